"""Outcome definitions: one row per participant with start, stop, event and why.

The definitions are those of docs/outcome-definitions.md; each setting is a named,
documented parameter of OutcomeSettings, its default declared in analytics.settings.
Everything runs as SQL in DuckDB
(analytics.store.queries.outcomes); pandas only receives the one-row-per-participant result.

Sobriety duration
    Days from the sobriety start (``sobriety_start``, else ``enrolled_on``) to the first
    check-in on or after it that reports use (the event; a relapse reported on the day
    of the start is an event at day 0). Without such a check-in: censored at the last
    check-in. Participants with no check-in on or after the start have no follow-up:
    they are left out and counted. The event is dated by the check-in that reports it:
    use happened on or before that day, so check-in frequency limits the precision.

Retention
    Days from ``enrolled_on`` to leaving. A recorded exit on or before the cutoff
    decides: ``dropped_out`` is the event, any other reason censors on ``exited_on``
    (completing is not failing). With no recorded exit, a participant whose last
    engagement (attendance, check-in or mentoring; enrollment if none) is at least
    ``inactivity_days`` before the cutoff has left silently: the event day is that last
    engagement. Everyone else is censored at the cutoff. ``event_type`` keeps the
    competing exits apart (dropped_out, completed, other_exit, censored) for
    cumulative-incidence views.

Only data on or before the cutoff is used; participants enrolled after it are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analytics.access.roles import scoped_sites
from analytics.outcomes.columns import COHORTS, DESCRIPTORS, GROUP_COLUMNS, MISSING_LEVEL, OUTCOMES  # noqa: F401  (re-exported)
from analytics.outcomes.filters import Filters
from analytics.settings import INACTIVITY_DAYS
from analytics.store.connection import Store
from analytics.store.queries import outcomes as queries


@dataclass(frozen=True)
class OutcomeSettings:
    """The named settings of the outcome definitions.

    cutoff: the day the data runs to; None means the latest date in the store.
    inactivity_days: days without any engagement after which a participant with no
        recorded exit counts as having left (retention only).
    """

    cutoff: dt.date | None = None
    inactivity_days: int = INACTIVITY_DAYS.default

    def __post_init__(self) -> None:
        INACTIVITY_DAYS.check(self.inactivity_days)


@dataclass
class Durations:
    """One row per participant followed, and who was left out and why."""

    outcome: str
    cutoff: dt.date
    settings: OutcomeSettings
    filters: Filters
    frame: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def events(self) -> int:
        return int(self.frame.event.sum())

    def describe(self) -> str:
        """One line for chart notes: definition, n, events, cutoff."""
        what = ("sobriety: days from sobriety start to the first check-in reporting use"
                if self.outcome == "sobriety" else
                f"retention: days from enrollment to dropping out (recorded, or no engagement for "
                f"{self.settings.inactivity_days}+ days)")
        return (f"{what}; n={self.n:,}, events={self.events:,}; data to {self.cutoff}; "
                f"{self.filters.describe()}")


def latest_date(store: Store) -> dt.date | None:
    """The default cutoff: the latest date anywhere in the store, or at the acting account's
    sites for a site-scoped one (what its server-store mirror holds, so both stores agree)."""
    return queries.latest_date(store, scoped_sites(()))


def durations_sql(outcome: str, cutoff: dt.date, settings: OutcomeSettings,
                  filters: Filters) -> tuple[str, dict]:
    """The durations query and its named parameters, for use as a CTE by other analyses
    (built in analytics.store.queries.outcomes).

    Rows with a non-null `left_out` are participants left out (and why)."""
    check_outcome(outcome)
    return queries.durations_sql(outcome, cutoff, settings.inactivity_days, filters)


def check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")


def resolve_cutoff(store: Store, settings: OutcomeSettings) -> dt.date:
    return settings.cutoff or latest_date(store) or dt.date.today()


def durations(store: Store, outcome: str, settings: OutcomeSettings = OutcomeSettings(),
              filters: Filters = Filters()) -> Durations:
    """Per-participant durations for `outcome` ('sobriety' or 'retention')."""
    check_outcome(outcome)
    cutoff = resolve_cutoff(store, settings)
    rows = queries.durations(store, outcome, cutoff, settings.inactivity_days, filters, DESCRIPTORS, MISSING_LEVEL)
    followed = rows.left_out.isna().to_numpy()
    left = rows[~followed]
    frame = rows[followed].drop(columns=["left_out"]).reset_index(drop=True)
    frame["days"] = frame.days.astype(int)
    frame["event"] = frame.event.astype(bool)
    return Durations(outcome, cutoff, settings, filters, frame, left.left_out.value_counts().to_dict())
