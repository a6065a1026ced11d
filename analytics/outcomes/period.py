"""The reporting period, a value type every analysis of a date range shares.

Why in outcomes/: activity, cohorts, the KPIs, the charts and the report all take a
period; kept here, none of them depends on the Overview module (analyses.kpis).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store

__all__ = ["Period", "default_period"]


@dataclass(frozen=True)
class Period:
    """A reporting period: `start` to `end`, both days included."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                object.__setattr__(self, name, value.date())
            elif not isinstance(value, dt.date):
                raise TypeError(f"Period.{name} must be a date, not {type(value).__name__}")
        if self.start > self.end:
            raise ValueError(f"the period starts ({self.start}) after it ends ({self.end})")

    @classmethod
    def last_days(cls, end: dt.date, days: int = 28) -> Period:
        """The `days` days ending on `end` (included)."""
        if days < 1:
            raise ValueError("a period has at least one day")
        return cls(end - dt.timedelta(days=days - 1), end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def full_weeks(self) -> list[dt.date]:
        """Mondays of the ISO weeks (Monday-Sunday) lying wholly inside the period."""
        first = self.start + dt.timedelta(days=(7 - self.start.weekday()) % 7)
        out = []
        while first + dt.timedelta(days=6) <= self.end:
            out.append(first)
            first += dt.timedelta(days=7)
        return out

    def weeks(self) -> list[dt.date]:
        """Mondays of every ISO week that overlaps the period (edge weeks may be partial)."""
        monday = self.start - dt.timedelta(days=self.start.weekday())
        out = []
        while monday <= self.end:
            out.append(monday)
            monday += dt.timedelta(days=7)
        return out

    def describe(self) -> str:
        return f"{self.start} to {self.end} ({self.days} days)"

    def params(self) -> dict:
        return {"period_start": self.start, "period_end": self.end}


def default_period(store: Store, days: int = 28, settings: OutcomeSettings = OutcomeSettings()) -> Period:
    """The `days` days up to the cutoff (default: the latest date in the store)."""
    return Period.last_days(resolve_cutoff(store, settings), days)
