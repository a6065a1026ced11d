"""Engagement page: attendance over time, weekday pattern, check-in adherence per
participant, mentor caseloads, and the outreach list.

Every function takes the store, the participant `Filters` and (except the outreach list,
which looks back from a day) a reporting `Period` (analytics.analyses.kpis). All counting is SQL in
DuckDB with bound parameters (analytics.store.queries.activity); the results are small frames. Activity of a participant
with a recorded exit before the period's first day is never counted, so the totals agree
with the Overview KPIs (analytics.analyses.kpis).
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass

import pandas as pd

from analytics.access.roles import ANALYTICS, PARTICIPANT_LEVEL, requires
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import Period
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.publish.spreadsheets import neutralise_frame
from analytics.store.connection import Store
from analytics.store.queries import activity as queries

__all__ = ["ADHERENCE_BANDS", "DEFINITIONS", "FREQUENCIES", "MONTH_DAYS", "OUTREACH_COLUMNS", "RiskWeights",
           "adherence_by_participant", "adherence_distribution", "attendance_over_time",
           "mentor_caseloads", "outreach_csv", "outreach_list", "weekday_pattern"]

FREQUENCIES = ("week", "month")
MONTH_DAYS = 365.25 / 12  # an average month, for "per month" rates
RECENT_DAYS = 28  # "recent engagement": the 4 weeks up to the last contact

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
    "outreach": ("Participants enrolled on or before the reference day, with no exit recorded on or "
                 "before it, whose last contact (meeting attended, check-in or mentoring session; "
                 "enrollment if none) is at least N days before it. Recent engagement = counts in the "
                 "4 weeks up to and including the last contact."),
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
def adherence_distribution(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """How many active participants fall in each adherence band (ADHERENCE_BANDS, in order).

    Columns: band, participants, share (of the participants with at least one eligible
    week; NaN when there are none). Every band is present, with 0 when empty. The bands
    are of each participant's own adherence (see adherence_by_participant).
    """
    frame = queries.adherence_bands(store, filters, period.start, period.end, period.full_weeks(),
                                    ADHERENCE_BANDS)
    total = frame.participants.sum()
    frame["share"] = frame.participants / total if total else float("nan")
    return frame


# --- mentor caseloads -------------------------------------------------------------

@requires(ANALYTICS)
def mentor_caseloads(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """One row per mentor with at least one session in the period, largest caseload first.

    Columns: mentor_id, active_mentees (participants matching the filters with a session
    with this mentor in the period), sessions, sessions_per_mentee (in the period),
    sessions_per_mentee_per_month (sessions / active_mentees / months, months = period
    days / 30.44), programs and sites of those mentees. With program/site filters a
    mentor's caseload counts only the matching mentees. See DEFINITIONS['caseload'].
    """
    frame = queries.mentor_caseloads(store, filters, period.start, period.end)
    months = period.days / MONTH_DAYS
    frame.insert(3, "sessions_per_mentee", frame.sessions / frame.active_mentees)
    frame.insert(4, "sessions_per_mentee_per_month", frame.sessions_per_mentee / months)
    return frame


# --- outreach list ----------------------------------------------------------------

@dataclass(frozen=True)
class RiskWeights:
    """The documented outreach risk score: 0 (lowest) to 100 (highest) points.

    engagement (up to `engagement_points`): `engagement_points` x the relative weekly hazard
        of leaving implied by the participant's average weekly engagement in the 4 weeks up
        to their last contact: hr_meeting^meetings x hr_checkin^checkins x hr_mentoring^sessions
        (per week). No engagement at all gives the full points. The hazard ratios per weekly
        meeting / check-in / mentoring session (0.85 / 0.90 / 0.75) are those of the
        dropout model behind the synthetic data (analytics.ingest.synthetic.TRUTH), which the
        lagged time-varying Cox analysis (analytics.analyses.engagement) recovers; replace them with
        your program's own estimates when you have them.
    silence (up to `silence_points`): grows linearly with the days since the last contact,
        full at `silence_full_days` days.
    recent use (`use_points`): at least one check-in in those 4 weeks reported substance use.
    """

    hr_meeting: float = 0.85
    hr_checkin: float = 0.90
    hr_mentoring: float = 0.75
    engagement_points: float = 60.0
    silence_points: float = 25.0
    silence_full_days: int = 90
    use_points: float = 15.0

    def __post_init__(self) -> None:
        for name in ("hr_meeting", "hr_checkin", "hr_mentoring"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]")
        if self.silence_full_days < 1:
            raise ValueError("silence_full_days must be at least 1")

    def params(self) -> dict:
        """The score's terms as analytics.store.queries.activity.outreach takes them."""
        return {"w_meeting": -math.log(self.hr_meeting), "w_checkin": -math.log(self.hr_checkin),
                "w_mentoring": -math.log(self.hr_mentoring), "pts_engagement": self.engagement_points,
                "pts_silence": self.silence_points, "silence_days": self.silence_full_days,
                "pts_use": self.use_points}


OUTREACH_COLUMNS = ("rank", "participant_id", "program", "site", "enrolled_on", "last_contact",
                    "days_since_contact", "last_contact_type", "meetings_4w", "checkins_4w",
                    "mentoring_4w", "used_4w", "risk_score", "engagement_points", "silence_points",
                    "use_points")

@requires(PARTICIPANT_LEVEL)
def outreach_list(store: Store, filters: Filters, no_contact_days: int, as_of: dt.date | None = None,
                  weights: RiskWeights = RiskWeights(), max_days: int | None = None) -> pd.DataFrame:
    """Participants to reach out to: no contact for at least `no_contact_days` days, highest risk first.

    Who: participants matching `filters`, enrolled on or before `as_of`, with no exit
    recorded on or before `as_of`, whose last contact (meeting attended, check-in or
    mentoring session on or before `as_of`; their enrollment day if they never had one)
    is at least `no_contact_days` days before `as_of` and, with `max_days`, at most that many
    (people silent for months have, by the retention definition, already left: a separate
    question from who is slipping away now). `as_of` defaults to the cutoff
    (the latest date in the store).

    Columns (OUTREACH_COLUMNS): rank (1 = highest risk), participant_id (pseudonymous),
    program, site, enrolled_on, last_contact (None if never), days_since_contact,
    last_contact_type ('meeting', 'check-in', 'mentoring', joined with ' + ' when several
    fell on that day, or 'none since enrollment'), meetings_4w / checkins_4w /
    mentoring_4w / used_4w (engagement and any reported use in the 4 weeks up to and
    including the last contact), risk_score (0-100) and its parts engagement_points,
    silence_points, use_points (see RiskWeights for the formula).

    Order: risk_score, then days since contact (longest first), then participant_id.
    """
    if no_contact_days < 0:
        raise ValueError("no_contact_days must be 0 or more")
    if max_days is not None and max_days < no_contact_days:
        raise ValueError("max_days must be at least no_contact_days")
    as_of = as_of or resolve_cutoff(store, OutcomeSettings())
    frame = queries.outreach(store, filters, as_of, int(no_contact_days),
                             None if max_days is None else int(max_days), RECENT_DAYS - 1, **weights.params())
    frame = _frame_dates(frame, "enrolled_on", "last_contact")
    frame["last_contact"] = [None if pd.isna(d) else d for d in frame["last_contact"]]
    frame["used_4w"] = frame["used_4w"].astype(bool)
    return frame[list(OUTREACH_COLUMNS)]


def outreach_csv(frame: pd.DataFrame) -> bytes:
    """The outreach list as UTF-8 CSV (header row, ISO dates, no index), for download.

    It lists pseudonymous IDs only; it is for the program's own outreach, not for release.
    """
    buf = io.StringIO()
    neutralise_frame(frame).to_csv(buf, index=False, date_format="%Y-%m-%d", float_format="%.1f",
                                   lineterminator="\n")
    return buf.getvalue().encode("utf-8")
