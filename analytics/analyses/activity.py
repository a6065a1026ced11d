"""Engagement page: attendance over time, weekday pattern, check-in adherence per
participant and mentor caseloads (the outreach list: analytics.analyses.outreach).

Every function takes the store, the participant `Filters` and a reporting `Period`
(analytics.outcomes.period). All counting is SQL in DuckDB with bound parameters
(analytics.store.queries.activity); the results are small frames. Activity of a participant
with a recorded exit before the period's first day is never counted, so the totals agree
with the Overview KPIs (analytics.analyses.kpis).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.access.roles import ANALYTICS, PARTICIPANT_LEVEL, requires
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from analytics.store.queries import activity as queries

__all__ = ["ADHERENCE_BANDS", "DEFINITIONS", "FREQUENCIES", "MONTH_DAYS", "adherence_band",
           "adherence_by_participant", "adherence_distribution", "possible_bands", "attendance_over_time", "mentor_caseloads", "weekday_pattern"]

FREQUENCIES = ("week", "month")
MONTH_DAYS = 365.25 / 12  # an average month, for "per month" rates

DEFINITIONS = {
    "attendance": ("Meetings attended per {freq}, by meeting type and "
                   "modality, counting only days inside the period; participants = distinct "
                   "participants attending. Participants with a recorded exit before the period are "
                   "not counted."),
    "attendance_week": "Weeks run Monday to Sunday.",
    "weekday": ("Meetings attended, check-ins and mentoring sessions in the period by day of the "
                "week; per_day = the count divided by the number of such weekdays in the period."),
    "adherence": ("Check-in adherence per active participant: of their Monday-Sunday weeks lying "
                  "wholly inside the period (enrolled by the Monday, no recorded exit before the "
                  "Sunday), the share with at least one check-in. Participants with no such week "
                  "are not shown."),
    "caseload": ("Mentor caseload in the period: active mentees = participants (matching the filters) "
                 "with at least one session with that mentor in the period; sessions per mentee per "
                 "month = the mentor's sessions / active mentees / (period days / 30.44)."),
}


def _frame_dates(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for col in cols:
        frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


# --- attendance by type and modality ------------------------------------------------

@requires(ANALYTICS)
def attendance_over_time(store: Store, filters: Filters, period: Period, freq: str = "week") -> pd.DataFrame:
    """Meetings attended per week (Monday-Sunday) or calendar month, by meeting type and modality.

    One row per (bucket, meeting_type, modality) with any attendance: bucket (the week's
    Monday or the month's first day), first_day/last_day (the bucket's days inside the
    period), partial (the period cuts the bucket), meeting_type, modality, meetings
    (attendance records), participants (distinct attendees; not additive across rows) and
    minutes (sum of the recorded minutes; blanks not counted). Summed over all rows,
    meetings equals the Overview's "meetings attended". See DEFINITIONS['attendance'].
    """
    if freq not in FREQUENCIES:
        raise ValueError(f"freq must be one of {', '.join(FREQUENCIES)}, not {freq!r}")
    frame = queries.attendance(store, filters, period.start, period.end, freq)
    frame = _frame_dates(frame, "bucket")
    if freq == "week":
        ends = [b + dt.timedelta(days=6) for b in frame.bucket]
    else:
        ends = [(pd.Timestamp(b) + pd.offsets.MonthEnd(0)).date() for b in frame.bucket]
    frame.insert(1, "first_day", [max(b, period.start) for b in frame.bucket])
    frame.insert(2, "last_day", [min(e, period.end) for e in ends])
    frame.insert(3, "partial", [f != b or l != e for f, b, l, e in
                                zip(frame.first_day, frame.bucket, frame.last_day, ends)])
    frame["minutes"] = frame["minutes"].fillna(0).astype("int64")
    return frame


# --- weekday pattern --------------------------------------------------------------

@requires(ANALYTICS)
def weekday_pattern(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """Activity by day of the week (1 = Monday ... 7 = Sunday) in the period.

    Columns: weekday, day_name, days_in_period (how many such days the period has; a
    period shorter than a week lacks some weekdays), meetings, checkins, mentoring
    (counts), meetings_per_day / checkins_per_day / mentoring_per_day (count divided by
    days_in_period) and meetings_share / checkins_share / mentoring_share (share of the
    period's total of that kind; NaN when the total is 0). See DEFINITIONS['weekday'].
    """
    frame = queries.weekday_counts(store, filters, period.start, period.end)
    for kind in ("meetings", "checkins", "mentoring"):
        frame[f"{kind}_per_day"] = frame[kind] / frame["days_in_period"]
        total = frame[kind].sum()
        frame[f"{kind}_share"] = frame[kind] / total if total else float("nan")
    return frame


# --- check-in adherence -----------------------------------------------------------

ADHERENCE_BANDS = ("0%", "1-24%", "25-49%", "50-74%", "75-99%", "100%")


def adherence_band(weeks_with_checkin: int, weeks: int) -> str:
    """The band of ADHERENCE_BANDS that k of w weeks falls in (as the SQL of
    analytics.store.queries.activity assigns it)."""
    share = weeks_with_checkin / weeks
    if weeks_with_checkin == 0:
        return "0%"
    if weeks_with_checkin == weeks:
        return "100%"
    return "1-24%" if share < 0.25 else "25-49%" if share < 0.5 else "50-74%" if share < 0.75 else "75-99%"


def possible_bands(period: Period) -> set[str]:
    """The bands a participant can fall in with the period's whole weeks: with 3 weeks the
    shares are 0, 1/3, 1/2, 2/3 and 1, so "1-24%" and "75-99%" cannot occur, and an empty bar
    there is not a finding. From 5 whole weeks on every band can occur."""
    most = min(len(period.full_weeks()), 5)
    return {adherence_band(k, w) for w in range(1, most + 1) for k in range(w + 1)}


@requires(PARTICIPANT_LEVEL)
def adherence_by_participant(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """One row per active participant with at least one eligible week in the period.

    Columns: participant_id, program, site, weeks (eligible whole weeks), weeks_with_checkin,
    adherence (= weeks_with_checkin / weeks), band (one of ADHERENCE_BANDS). Pooled over
    participants, sum(weeks_with_checkin) / sum(weeks) is the Overview's check-in adherence.
    See DEFINITIONS['adherence'].
    """
    return queries.adherence_by_participant(store, filters, period.start, period.end, period.full_weeks())


@requires(ANALYTICS)
def adherence_distribution(store: Store, filters: Filters, period: Period, keyed: bool = False) -> pd.DataFrame:
    """How many active participants fall in each adherence band (ADHERENCE_BANDS, in order).

    Columns: band, participants, share (of the participants with at least one eligible
    week; NaN when there are none). Every band is present, with 0 when empty. The bands
    are of each participant's own adherence (see adherence_by_participant).
    ``keyed``: also participants_key (the cell key of each band, for the download).
    """
    frame = queries.adherence_bands(store, filters, period.start, period.end, period.full_weeks(),
                                    ADHERENCE_BANDS, keyed)
    total = frame.participants.sum()
    frame["share"] = frame.participants / total if total else float("nan")
    return frame


# --- mentor caseloads -------------------------------------------------------------

@requires(ANALYTICS)
def mentor_caseloads(store: Store, filters: Filters, period: Period, keyed: bool = False) -> pd.DataFrame:
    """One row per mentor with at least one session in the period, largest caseload first.

    Columns: mentor_id, active_mentees (participants matching the filters with a session
    with this mentor in the period), sessions, sessions_per_mentee (in the period),
    sessions_per_mentee_per_month (sessions / active_mentees / months, months = period
    days / 30.44), programs and sites of those mentees. With program/site filters a
    mentor's caseload counts only the matching mentees. See DEFINITIONS['caseload'].
    ``keyed``: also active_mentees_key (the cell key of each caseload, for the download).
    """
    frame = queries.mentor_caseloads(store, filters, period.start, period.end, keyed)
    months = period.days / MONTH_DAYS
    frame.insert(3, "sessions_per_mentee", frame.sessions / frame.active_mentees)
    frame.insert(4, "sessions_per_mentee_per_month", frame.sessions_per_mentee / months)
    return frame
