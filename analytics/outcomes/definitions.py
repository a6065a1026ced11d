"""Outcome definitions: one row per participant with start, stop, event and why.

The definitions are those of docs/outcome-definitions.md; each setting is a named,
documented parameter of OutcomeSettings, its default declared in analytics.settings.
Everything runs as SQL in DuckDB; pandas only receives the one-row-per-participant result.

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

from analytics.outcomes.columns import COHORTS, DESCRIPTORS, GROUP_COLUMNS, MISSING_LEVEL, OUTCOMES  # noqa: F401  (re-exported)
from analytics.outcomes.filters import Filters
from analytics.settings import INACTIVITY_DAYS
from analytics.store.connection import Store


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
    """The default cutoff: the latest date anywhere in the store."""
    return store.scalar("""
        SELECT max(d) FROM (
            SELECT max(greatest(enrolled_on, coalesce(exited_on, enrolled_on))) AS d FROM participants
            UNION ALL SELECT max(attended_on) FROM attendance
            UNION ALL SELECT max(checked_in_on) FROM checkins
            UNION ALL SELECT max(met_on) FROM mentoring)""")


_BASE = """
    SELECT p.*, coalesce(p.sobriety_start, p.enrolled_on) AS sober_from,
           strftime(p.enrolled_on, '%Y-%m') AS cohort_month,
           strftime(p.enrolled_on, '%Y') || '-Q' || quarter(p.enrolled_on) AS cohort_quarter,
           strftime(p.enrolled_on, '%Y') AS cohort_year
    FROM participants p WHERE {where}"""

_SOBRIETY = """
WITH base AS ({base}),
follow AS (
    SELECT b.participant_id,
           min(c.checked_in_on) FILTER (WHERE c.used) AS first_use,
           max(c.checked_in_on) AS last_checkin
    FROM base b JOIN checkins c ON c.participant_id = b.participant_id
         AND c.checked_in_on >= b.sober_from AND c.checked_in_on <= $cutoff::DATE
    GROUP BY b.participant_id)
SELECT b.*, b.sober_from AS start, coalesce(f.first_use, f.last_checkin) AS stop,
       f.first_use IS NOT NULL AS event,
       CASE WHEN f.first_use IS NOT NULL THEN 'relapse reported'
            WHEN f.last_checkin IS NOT NULL THEN 'last check-in' END AS reason,
       CASE WHEN b.enrolled_on > $cutoff::DATE THEN 'enrolled after the cutoff'
            WHEN f.participant_id IS NULL THEN 'no check-in on or after the sobriety start' END AS left_out
FROM base b LEFT JOIN follow f USING (participant_id)"""

_RETENTION = """
WITH base AS ({base}),
engaged AS (
    SELECT participant_id, max(d) AS last_engaged FROM (
        SELECT participant_id, attended_on AS d FROM attendance WHERE attended_on <= $cutoff::DATE
        UNION ALL SELECT participant_id, checked_in_on FROM checkins WHERE checked_in_on <= $cutoff::DATE
        UNION ALL SELECT participant_id, met_on FROM mentoring WHERE met_on <= $cutoff::DATE)
    WHERE participant_id IN (SELECT participant_id FROM base)
    GROUP BY participant_id),
decided AS (
    SELECT b.*, greatest(coalesce(e.last_engaged, b.enrolled_on), b.enrolled_on) AS last_engaged,
           b.exited_on IS NOT NULL AND b.exited_on <= $cutoff::DATE AS exit_recorded
    FROM base b LEFT JOIN engaged e USING (participant_id))
SELECT d.* EXCLUDE (exit_recorded), d.enrolled_on AS start,
       CASE WHEN exit_recorded THEN exited_on
            WHEN $cutoff::DATE - last_engaged >= $days THEN last_engaged
            ELSE $cutoff::DATE END AS stop,
       CASE WHEN exit_recorded THEN exit_reason = 'dropped_out'
            ELSE $cutoff::DATE - last_engaged >= $days END AS event,
       CASE WHEN exit_recorded THEN exit_reason
            WHEN $cutoff::DATE - last_engaged >= $days THEN 'no engagement for ' || $days || '+ days'
            ELSE 'in the program at the cutoff' END AS reason,
       CASE WHEN exit_recorded AND exit_reason = 'dropped_out' THEN 'dropped_out'
            WHEN exit_recorded AND exit_reason = 'completed' THEN 'completed'
            WHEN exit_recorded THEN 'other_exit'
            WHEN $cutoff::DATE - last_engaged >= $days THEN 'dropped_out'
            ELSE 'censored' END AS event_type,
       CASE WHEN enrolled_on > $cutoff::DATE THEN 'enrolled after the cutoff' END AS left_out
FROM decided d"""


def durations_sql(outcome: str, cutoff: dt.date, settings: OutcomeSettings,
                  filters: Filters) -> tuple[str, dict]:
    """The durations query and its named parameters, for use as a CTE by other analyses.

    Rows with a non-null `left_out` are participants left out (and why)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    where, params = filters.where("p")
    base = _BASE.format(where=where)
    if outcome == "sobriety":
        return _SOBRIETY.format(base=base), {**params, "cutoff": cutoff}
    return _RETENTION.format(base=base), {**params, "cutoff": cutoff, "days": settings.inactivity_days}


def resolve_cutoff(store: Store, settings: OutcomeSettings) -> dt.date:
    return settings.cutoff or latest_date(store) or dt.date.today()


def durations(store: Store, outcome: str, settings: OutcomeSettings = OutcomeSettings(),
              filters: Filters = Filters()) -> Durations:
    """Per-participant durations for `outcome` ('sobriety' or 'retention')."""
    cutoff = resolve_cutoff(store, settings)
    sql, params = durations_sql(outcome, cutoff, settings, filters)
    rows = store.df(sql, params)
    left = rows[rows.left_out.notna()]
    frame = rows[rows.left_out.isna()].drop(columns=["left_out"]).reset_index(drop=True)
    frame["days"] = (pd.to_datetime(frame.stop) - pd.to_datetime(frame.start)).dt.days.astype(int)
    frame["event"] = frame.event.astype(bool)
    for col in DESCRIPTORS:
        frame[col] = frame[col].fillna(MISSING_LEVEL)
    frame = frame.sort_values("participant_id").reset_index(drop=True)
    return Durations(outcome, cutoff, settings, filters, frame, left.left_out.value_counts().to_dict())
