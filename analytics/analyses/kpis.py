"""Overview KPIs for program directors: a reporting period against the one before it.

Every number on the Overview page comes from here. Each KPI is defined once, in
``DEFINITIONS``; the same text goes into docstrings, chart notes and the page.

Reporting period
    ``Period(start, end)`` (analytics.outcomes.period), both days included. The previous
    period is the same number of days ending the day before ``start``.

Who counts
    Participants matching the ``Filters`` (program, site, enrollment window). All
    counting runs as SQL in DuckDB with bound parameters (analytics.store.queries.kpis);
    pandas only receives the few summary rows.

Definitions (``DEFINITIONS`` holds the exact wording shown to users)
    active participants: enrolled on or before the period's last day, no recorded exit
        before its first day, and at least one engagement (meeting attended, check-in
        or mentoring session) dated in the period.
    new enrollments: participants whose ``enrolled_on`` falls in the period.
    meetings attended: attendance records dated in the period, of active participants.
    check-in adherence: of the participant-weeks of active participants in the
        period, the share with at least one check-in. Weeks are ISO weeks (Monday to
        Sunday) lying wholly inside the period; a participant's week counts when they
        were enrolled on or before its Monday and had no recorded exit before its
        Sunday. A period without a whole week has no adherence (None).
    mentoring coverage: share of active participants with at least one mentoring
        session in the period.
    30- and 90-day retention: the share of a cohort of new enrollees still in the program
        30 (90) days after enrolling, by the retention definition of docs/outcome-definitions.md
        (``analytics.outcomes.definitions``: a recorded ``dropped_out`` exit, or no engagement for
        ``inactivity_days``, dated at the last engagement, is leaving; other exits are
        censored, not counted as leaving), estimated by Kaplan-Meier
        (``analytics.stats.survival``) so that completers and transfers before day t leave the
        denominator. The cohort is the participants enrolled in the reporting period when
        their day t is known for everyone, else in the latest window of the same length
        whose day t is known (``retention_window``): someone who goes quiet is only known
        to have left once inactivity_days have passed, so day t is known for enrollees at
        least t + inactivity_days days before the data cutoff. Counting the others would
        overstate recent retention (on the 100k synthetic store by 1-2 points), and a
        blank card would tell a director nothing. The window is shown with the value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from analytics.stats import survival
from analytics.access.roles import ANALYTICS, requires
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from analytics.store.queries import kpis as queries

__all__ = ["DEFINITIONS", "KPI_KEYS", "LABELS", "RETENTION_DAYS", "TREND_COLUMNS", "TREND_DEFINITION",
           "BY_PROGRAM_DEFINITION", "Kpi", "Overview", "active_sql", "by_program", "adherence_sql", "km_from_counts",
           "overview", "retention_counts", "retention_window", "settled_retention", "weekly_trends"]

RETENTION_DAYS = (30, 90)

DEFINITIONS = {
    "active": ("Active participants: enrolled on or before the period's last day, no recorded exit "
               "before its first day, and at least one meeting attended, check-in or mentoring "
               "session in the period."),
    "new_enrollments": "New enrollments: participants whose enrollment date falls in the period.",
    "meetings": "Meetings attended: attendance records dated in the period, of active participants.",
    "adherence": ("Check-in adherence: share of active participants' weeks in the period with at least "
                  "one check-in. Weeks are Monday-Sunday weeks lying wholly inside the period; a "
                  "participant's week counts if they were enrolled by its Monday and had no recorded "
                  "exit before its Sunday."),
    "mentoring_coverage": ("Mentoring coverage: share of active participants with at least one "
                           "mentoring session in the period."),
    "retention_30": ("30-day retention: share of a cohort of new enrollees still in the program 30 days "
                     "after enrolling (Kaplan-Meier). Leaving = a recorded drop-out, or no engagement for "
                     "{inactivity} days (dated at the last engagement); other exits (completed, transferred, "
                     "...) are censored, not counted as leaving. The cohort is the participants enrolled in "
                     "the reporting period if it ended at least 30 + {inactivity} days before the data "
                     "cutoff, else in the latest window of the same length that did: silent leaving is "
                     "known only after {inactivity} days, so more recent enrollees cannot be counted yet."),
    "retention_90": ("90-day retention: share of a cohort of new enrollees still in the program 90 days "
                     "after enrolling (Kaplan-Meier). Leaving = a recorded drop-out, or no engagement for "
                     "{inactivity} days (dated at the last engagement); other exits (completed, transferred, "
                     "...) are censored, not counted as leaving. The cohort is the participants enrolled in "
                     "the reporting period if it ended at least 90 + {inactivity} days before the data "
                     "cutoff, else in the latest window of the same length that did: silent leaving is "
                     "known only after {inactivity} days, so more recent enrollees cannot be counted yet."),
}
LABELS = {
    "active": "Active participants", "new_enrollments": "New enrollments",
    "meetings": "Meetings attended", "adherence": "Check-in adherence",
    "mentoring_coverage": "Mentoring coverage", "retention_30": "30-day retention",
    "retention_90": "90-day retention",
}
KPI_KEYS = tuple(LABELS)
TREND_DEFINITION = (
    "Per Monday-Sunday week, counting only days inside the period: active participants (as in the "
    "Overview, for that week), meetings attended, check-ins and mentoring sessions of those "
    "participants, and new enrollments. Edge weeks cut by the period are marked partial.")


# --- the SQL, for analyses built on it -------------------------------------------------

def active_sql(filters: Filters, period: Period) -> tuple[str, dict]:
    """SQL for the active participants of `period` (see DEFINITIONS['active']), one row each:
    participant_id, program, site, enrolled_on, exited_on, meetings, checkins, mentoring
    (counts in the period) and last_day (their last engagement in the period)."""
    return queries.active_sql(filters, period.start, period.end)


def adherence_sql(filters: Filters, period: Period) -> tuple[str, dict]:
    """SQL for one row per active participant of `period`: the columns of active_sql plus
    `weeks` (their eligible whole weeks in the period, see DEFINITIONS['adherence']) and
    `weeks_with_checkin`."""
    return queries.adherence_sql(filters, period.start, period.end, period.full_weeks())


# --- results ----------------------------------------------------------------------

@dataclass(frozen=True)
class Kpi:
    """One KPI for the period and the previous period.

    kind: "count" (a whole number) or "share" (0..1).
    current_n / previous_n: what a share is computed over (active participants, participant-
        weeks, or for retention the participants whose status at that day is known); for
        counts, None.
    current_of / previous_of: retention only: everyone enrolled in the window (current_n of
        current_of have been followed long enough to count).
    window / previous_window: retention only: the enrollment windows the cohorts come from
        (the period and the previous one, or earlier windows: see retention_window).
    """

    key: str
    label: str
    kind: str
    current: float | None
    previous: float | None
    current_n: int | None = None
    previous_n: int | None = None
    definition: str = ""
    current_of: int | None = None
    previous_of: int | None = None
    window: Period | None = None
    previous_window: Period | None = None

    @property
    def change(self) -> float | None:
        """current - previous (for shares: in proportion points, 0.05 = 5 percentage points)."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def relative_change(self) -> float | None:
        """(current - previous) / previous, for counts; None for shares or a zero previous."""
        if self.kind != "count" or self.change is None or not self.previous:
            return None
        return self.change / self.previous


@dataclass
class Overview:
    """The Overview KPIs: `kpis[key]` for each key of KPI_KEYS."""

    period: Period
    previous_period: Period
    cutoff: dt.date
    filters: Filters
    settings: OutcomeSettings
    kpis: dict[str, Kpi] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per KPI: label, current, previous, change, denominators, definition."""
        ks = list(self.kpis.values())
        cols = {"kpi": [k.key for k in ks], "label": [k.label for k in ks], "kind": [k.kind for k in ks],
                "current": [k.current for k in ks], "previous": [k.previous for k in ks],
                "change": [k.change for k in ks], "current_n": [k.current_n for k in ks],
                "previous_n": [k.previous_n for k in ks], "current_of": [k.current_of for k in ks],
                "previous_of": [k.previous_of for k in ks],
                "window": [k.window.describe() if k.window else None for k in ks],
                "previous_window": [k.previous_window.describe() if k.previous_window else None for k in ks],
                "definition": [k.definition for k in ks]}
        return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in cols.items()})

    def describe(self) -> str:
        return (f"period {self.period.describe()} against {self.previous_period.describe()}; "
                f"data to {self.cutoff}; {self.filters.describe()}")


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def _period_counts(store: Store, filters: Filters, period: Period) -> dict:
    return queries.period_counts(store, filters, period.start, period.end, period.full_weeks())


def _narrow(filters: Filters, start: dt.date, end: dt.date) -> Filters:
    """`filters` with its enrollment window intersected with [start, end]."""
    lo = max(filters.enrolled_from, start) if filters.enrolled_from else start
    hi = min(filters.enrolled_to, end) if filters.enrolled_to else end
    return replace(filters, enrolled_from=lo, enrolled_to=hi)


def retention_counts(store: Store, filters: Filters, settings: OutcomeSettings, group_sql: str,
                     extra_params: dict | None = None, keyed: bool = False) -> pd.DataFrame:
    """Retention durations (docs/outcome-definitions.md, analytics.outcomes.definitions) counted in SQL per
    (grp, ndays, event, potential): grp is `group_sql` evaluated on a durations row,
    potential = days from enrollment to the cutoff, n = participants. KM curves are built
    from it with km_from_counts.

    group_sql names a column of durations_sql (a participants column, or cohort_month /
    cohort_quarter / cohort_year), written in code, never user input; anything else is
    refused. `extra_params` are further bound parameters (none are needed today). ``keyed``: also
    n_key (the rows' cell keys, analytics.publish.cellkey)."""
    return queries.retention_counts(store, filters, resolve_cutoff(store, settings), settings.inactivity_days,
                                    group_sql, extra_params, keyed)


def km_from_counts(counts: pd.DataFrame) -> survival.KaplanMeier:
    """Kaplan-Meier (analytics.stats.survival) of the rows of retention_counts given."""
    days = np.repeat(counts.ndays.to_numpy(float), counts.n.to_numpy(int))
    event = np.repeat(counts.event.to_numpy(bool), counts.n.to_numpy(int))
    return survival.kaplan_meier(days, event)


def settled_retention(counts: pd.DataFrame, t: int, inactivity_days: int) -> tuple[float | None, int]:
    """Share still in the program at day `t`, among the participants in `counts` whose
    status at day t is known, and how many those are.

    Known: enrolled at least t + inactivity_days days before the cutoff. (Someone who stops
    engaging counts as having left on their last engagement, but only once inactivity_days
    have passed; before that they look retained, which would bias recent figures upward.)
    Among them, recorded exits other than dropping out before day t are censored (removed
    from the risk set, not counted as leaving) by the Kaplan-Meier estimate.
    """
    sub = counts[counts.potential >= t + inactivity_days]
    n = int(sub.n.sum())
    if n == 0:
        return None, 0
    return km_from_counts(sub).at(t), n


def retention_window(period: Period, cutoff: dt.date, t: int, inactivity_days: int) -> Period:
    """The enrollment window for t-day retention: `period` if everyone enrolled in it is
    known at day t by `cutoff`, else the latest window of the same length that is."""
    latest = cutoff - dt.timedelta(days=t + inactivity_days)
    return period if period.end <= latest else Period.last_days(latest, period.days)


@requires(ANALYTICS)
def overview(store: Store, filters: Filters, period: Period,
             settings: OutcomeSettings = OutcomeSettings()) -> Overview:
    """The Overview KPIs for `period` and the previous period of the same length.

    See DEFINITIONS for each KPI. Shares are 0..1 (None when their denominator is 0).
    `settings` gives the cutoff (default: latest date in the store) and the inactivity
    days of the retention definition.
    """
    prev = period.previous()
    cutoff = resolve_cutoff(store, settings)
    cur_c, prev_c = _period_counts(store, filters, period), _period_counts(store, filters, prev)
    windows = {t: retention_window(period, cutoff, t, settings.inactivity_days) for t in RETENTION_DAYS}
    lo = min(w.previous().start for w in windows.values())
    hi = max(w.end for w in windows.values())
    counts = retention_counts(store, _narrow(filters, lo, hi), settings, "enrolled_on")
    enrolled = pd.to_datetime(counts.grp).dt.date

    def kpi(key: str, kind: str, cur, prv, cur_n=None, prv_n=None, of=(None, None)) -> Kpi:
        return Kpi(key, LABELS[key], kind, cur, prv, cur_n, prv_n, DEFINITIONS[key].format(
            inactivity=settings.inactivity_days), *of)

    kpis = {
        "active": kpi("active", "count", cur_c["active"], prev_c["active"]),
        "new_enrollments": kpi("new_enrollments", "count", cur_c["new"], prev_c["new"]),
        "meetings": kpi("meetings", "count", cur_c["meetings"], prev_c["meetings"]),
        "adherence": kpi("adherence", "share", _share(cur_c["weeks_checked"], cur_c["weeks"]),
                         _share(prev_c["weeks_checked"], prev_c["weeks"]), cur_c["weeks"], prev_c["weeks"]),
        "mentoring_coverage": kpi("mentoring_coverage", "share", _share(cur_c["mentored"], cur_c["active"]),
                                  _share(prev_c["mentored"], prev_c["active"]), cur_c["active"],
                                  prev_c["active"]),
    }
    for t, window in windows.items():
        got = []
        for w in (window, window.previous()):
            sub = counts[(enrolled >= w.start) & (enrolled <= w.end)]
            got.append((*settled_retention(sub, t, settings.inactivity_days), int(sub.n.sum())))
        (cur_v, cur_n, cur_of), (prev_v, prev_n, prev_of) = got
        kpis[f"retention_{t}"] = replace(
            kpi(f"retention_{t}", "share", cur_v, prev_v, cur_n, prev_n, (cur_of, prev_of)),
            window=window, previous_window=window.previous())
    return Overview(period, prev, cutoff, filters, settings, kpis)


# --- weekly trends ----------------------------------------------------------------

TREND_COLUMNS = ("active", "meetings", "checkins", "mentoring", "new_enrollments")


@requires(ANALYTICS)
def weekly_trends(store: Store, filters: Filters, period: Period, keyed: bool = False) -> pd.DataFrame:
    """One row per ISO week (Monday-Sunday) overlapping `period`, oldest first.

    Columns: week_start (Monday), iso_week ('2026-W27'), first_day/last_day (the week's days
    inside the period), days, partial (fewer than 7 days inside the period), and for those
    days only: active (participants active in that week, as DEFINITIONS['active'] with the
    week as the period), meetings, checkins, mentoring (sessions of those participants) and
    new_enrollments. Weeks with no activity are present with zeros. See TREND_DEFINITION.
    ``keyed``: also active_key and new_enrollments_key (cell keys, for what is published).
    """
    frame = queries.weekly_trends(store, filters, period.start, period.end, period.weeks(), keyed)
    for col in ("week_start", "first_day", "last_day"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    frame.insert(4, "days", [(b - a).days + 1 for a, b in zip(frame.first_day, frame.last_day)])
    frame.insert(5, "partial", frame["days"] < 7)
    return frame


# --- per program (the outcome report) -----------------------------------------------

BY_PROGRAM_DEFINITION = (
    "Per program, for the reporting period: new enrollments; active participants, meetings attended, "
    "check-ins and mentoring sessions as in the Overview (activity of active participants in the "
    "period); mentored = active participants with at least one session; checked in = active "
    "participants with at least one check-in; check-ins reporting use, and mean craving (0-10) and "
    "mood (1-5) over those check-ins.")


@requires(ANALYTICS)
def by_program(store: Store, filters: Filters, period: Period, keyed: bool = False) -> pd.DataFrame:
    """People served, engagement dose and check-in outcomes per program (BY_PROGRAM_DEFINITION).
    The counts add up over programs to the Overview's (a participant is in one program).
    ``keyed``: also the cell key of each count of people (queries.PEOPLE_COUNTS) as <count>_key,
    for the published copies (analytics.publish.cellkey)."""
    return queries.by_program(store, filters, period.start, period.end, keyed)
