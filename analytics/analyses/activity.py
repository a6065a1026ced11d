"""Engagement page: attendance over time, weekday pattern, check-in adherence per
participant, mentor caseloads, and the outreach list.

Every function takes the store, the participant `Filters` and (except the outreach list,
which looks back from a day) a reporting `Period` (analytics.analyses.kpis). All counting is SQL in
DuckDB with bound parameters; the results are small frames. Activity of a participant
with a recorded exit before the period's first day is never counted, so the totals agree
with the Overview KPIs (analytics.analyses.kpis).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from analytics.access.roles import ANALYTICS, PARTICIPANT_LEVEL, requires
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import adherence_sql
from analytics.outcomes.period import Period
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store

__all__ = ["ADHERENCE_BANDS", "DEFINITIONS", "FREQUENCIES", "MONTH_DAYS", "OUTREACH_COLUMNS", "RiskWeights",
           "adherence_by_participant", "adherence_distribution", "attendance_over_time",
           "mentor_caseloads", "outreach_list", "weekday_pattern"]

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

_ATTENDANCE = """
WITH p AS (SELECT p.participant_id FROM participants p WHERE {where}
           AND p.enrolled_on <= $period_end::DATE
           AND (p.exited_on IS NULL OR p.exited_on >= $period_start::DATE))
SELECT date_trunc($freq, a.attended_on)::DATE AS bucket, a.meeting_type, a.modality,
       count(*)::INTEGER AS meetings, count(DISTINCT a.participant_id)::INTEGER AS participants,
       sum(a.minutes)::BIGINT AS minutes
FROM attendance a JOIN p USING (participant_id)
WHERE a.attended_on BETWEEN $period_start::DATE AND $period_end::DATE
GROUP BY ALL ORDER BY bucket, meeting_type, modality"""


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
    where, params = filters.where("p")
    frame = store.df(_ATTENDANCE.format(where=where), {**params, **period.params(), "freq": freq})
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

_WEEKDAY = """
WITH p AS (SELECT p.participant_id FROM participants p WHERE {where}
           AND p.enrolled_on <= $period_end::DATE
           AND (p.exited_on IS NULL OR p.exited_on >= $period_start::DATE)),
act AS (
    SELECT isodow(attended_on) AS weekday, 1 AS m, 0 AS c, 0 AS s FROM attendance JOIN p USING (participant_id)
        WHERE attended_on BETWEEN $period_start::DATE AND $period_end::DATE
    UNION ALL
    SELECT isodow(checked_in_on), 0, 1, 0 FROM checkins JOIN p USING (participant_id)
        WHERE checked_in_on BETWEEN $period_start::DATE AND $period_end::DATE
    UNION ALL
    SELECT isodow(met_on), 0, 0, 1 FROM mentoring JOIN p USING (participant_id)
        WHERE met_on BETWEEN $period_start::DATE AND $period_end::DATE),
counts AS (SELECT weekday, sum(m) AS meetings, sum(c) AS checkins, sum(s) AS mentoring FROM act GROUP BY 1),
days AS (SELECT isodow(d::DATE) AS weekday, dayname(d::DATE) AS day_name, count(*) AS days_in_period
         FROM generate_series($period_start::DATE::TIMESTAMP, $period_end::DATE::TIMESTAMP, INTERVAL 1 DAY) t(d)
         GROUP BY ALL)
SELECT d.weekday, d.day_name, d.days_in_period::INTEGER AS days_in_period,
       coalesce(c.meetings, 0)::INTEGER AS meetings, coalesce(c.checkins, 0)::INTEGER AS checkins,
       coalesce(c.mentoring, 0)::INTEGER AS mentoring
FROM days d LEFT JOIN counts c USING (weekday) ORDER BY d.weekday"""


@requires(ANALYTICS)
def weekday_pattern(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """Activity by day of the week (1 = Monday ... 7 = Sunday) in the period.

    Columns: weekday, day_name, days_in_period (how many such days the period has; a
    period shorter than a week lacks some weekdays), meetings, checkins, mentoring
    (counts), meetings_per_day / checkins_per_day / mentoring_per_day (count divided by
    days_in_period) and meetings_share / checkins_share / mentoring_share (share of the
    period's total of that kind; NaN when the total is 0). See DEFINITIONS['weekday'].
    """
    where, params = filters.where("p")
    frame = store.df(_WEEKDAY.format(where=where), {**params, **period.params()})
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
    sql, params = adherence_sql(filters, period)
    return store.df(f"""
        SELECT participant_id, program, site, weeks, weeks_with_checkin,
               weeks_with_checkin / weeks AS adherence, {_BAND_SQL} AS band
        FROM ({sql}) WHERE weeks > 0 ORDER BY participant_id""", params)


_BAND_SQL = ("CASE WHEN weeks_with_checkin = 0 THEN '0%' "
             "WHEN weeks_with_checkin = weeks THEN '100%' "
             "WHEN weeks_with_checkin / weeks < 0.25 THEN '1-24%' "
             "WHEN weeks_with_checkin / weeks < 0.50 THEN '25-49%' "
             "WHEN weeks_with_checkin / weeks < 0.75 THEN '50-74%' ELSE '75-99%' END")


@requires(ANALYTICS)
def adherence_distribution(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """How many active participants fall in each adherence band (ADHERENCE_BANDS, in order).

    Columns: band, participants, share (of the participants with at least one eligible
    week; NaN when there are none). Every band is present, with 0 when empty. The bands
    are of each participant's own adherence (see adherence_by_participant).
    """
    sql, params = adherence_sql(filters, period)
    frame = store.df(f"""
        WITH bands AS (SELECT unnest($bands::VARCHAR[]) AS band, unnest(range(len($bands::VARCHAR[]))) AS i),
        per AS (SELECT {_BAND_SQL} AS band FROM ({sql}) WHERE weeks > 0)
        SELECT b.band, count(per.band)::INTEGER AS participants
        FROM bands b LEFT JOIN per USING (band) GROUP BY b.band, b.i ORDER BY b.i""",
        {**params, "bands": list(ADHERENCE_BANDS)})
    total = frame.participants.sum()
    frame["share"] = frame.participants / total if total else float("nan")
    return frame


# --- mentor caseloads -------------------------------------------------------------

_CASELOAD = """
WITH p AS (SELECT p.participant_id, p.program, p.site FROM participants p WHERE {where}
           AND p.enrolled_on <= $period_end::DATE
           AND (p.exited_on IS NULL OR p.exited_on >= $period_start::DATE)),
s AS (SELECT m.mentor_id, m.participant_id, any_value(p.program) AS program, any_value(p.site) AS site,
             count(*) AS sessions
      FROM mentoring m JOIN p USING (participant_id)
      WHERE m.met_on BETWEEN $period_start::DATE AND $period_end::DATE
      GROUP BY m.mentor_id, m.participant_id)
SELECT mentor_id, count(*)::INTEGER AS active_mentees, sum(sessions)::INTEGER AS sessions,
       string_agg(DISTINCT program, ', ' ORDER BY program) AS programs,
       string_agg(DISTINCT coalesce(site, '(not recorded)'), ', ' ORDER BY coalesce(site, '(not recorded)')) AS sites
FROM s GROUP BY mentor_id ORDER BY active_mentees DESC, sessions DESC, mentor_id"""


@requires(ANALYTICS)
def mentor_caseloads(store: Store, filters: Filters, period: Period) -> pd.DataFrame:
    """One row per mentor with at least one session in the period, largest caseload first.

    Columns: mentor_id, active_mentees (participants matching the filters with a session
    with this mentor in the period), sessions, sessions_per_mentee (in the period),
    sessions_per_mentee_per_month (sessions / active_mentees / months, months = period
    days / 30.44), programs and sites of those mentees. With program/site filters a
    mentor's caseload counts only the matching mentees. See DEFINITIONS['caseload'].
    """
    where, params = filters.where("p")
    frame = store.df(_CASELOAD.format(where=where), {**params, **period.params()})
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
        return {"w_meeting": -math.log(self.hr_meeting), "w_checkin": -math.log(self.hr_checkin),
                "w_mentoring": -math.log(self.hr_mentoring), "pts_engagement": self.engagement_points,
                "pts_silence": self.silence_points, "silence_days": self.silence_full_days,
                "pts_use": self.use_points}


OUTREACH_COLUMNS = ("rank", "participant_id", "program", "site", "enrolled_on", "last_contact",
                    "days_since_contact", "last_contact_type", "meetings_4w", "checkins_4w",
                    "mentoring_4w", "used_4w", "risk_score", "engagement_points", "silence_points",
                    "use_points")

_OUTREACH = """
WITH p AS (
    SELECT p.participant_id, p.program, p.site, p.enrolled_on FROM participants p
    WHERE {where} AND p.enrolled_on <= $as_of::DATE
      AND (p.exited_on IS NULL OR p.exited_on > $as_of::DATE)),
last AS (
    SELECT participant_id, max(d) AS last_day FROM (
        SELECT participant_id, max(attended_on) AS d FROM attendance WHERE attended_on <= $as_of::DATE GROUP BY 1
        UNION ALL SELECT participant_id, max(checked_in_on) FROM checkins WHERE checked_in_on <= $as_of::DATE GROUP BY 1
        UNION ALL SELECT participant_id, max(met_on) FROM mentoring WHERE met_on <= $as_of::DATE GROUP BY 1)
    GROUP BY 1),
quiet AS (
    SELECT p.*, l.last_day, ($as_of::DATE - coalesce(l.last_day, p.enrolled_on))::INTEGER AS days_since
    FROM p LEFT JOIN last l USING (participant_id)
    WHERE $as_of::DATE - coalesce(l.last_day, p.enrolled_on) >= $min_days
      AND ($max_days IS NULL OR $as_of::DATE - coalesce(l.last_day, p.enrolled_on) <= $max_days)),
recent AS (
    SELECT participant_id, sum(m)::INTEGER AS m, sum(c)::INTEGER AS c, sum(s)::INTEGER AS s,
           coalesce(bool_or(used), false) AS used,
           bool_or(m = 1 AND last) AS last_m, bool_or(c = 1 AND last) AS last_c, bool_or(s = 1 AND last) AS last_s
    FROM (
        SELECT q.participant_id, 1 AS m, 0 AS c, 0 AS s, NULL::BOOLEAN AS used, a.attended_on = q.last_day AS last
            FROM attendance a JOIN quiet q USING (participant_id)
            WHERE a.attended_on BETWEEN q.last_day - $window::INTEGER AND q.last_day
        UNION ALL
        SELECT q.participant_id, 0, 1, 0, c.used, c.checked_in_on = q.last_day
            FROM checkins c JOIN quiet q USING (participant_id)
            WHERE c.checked_in_on BETWEEN q.last_day - $window::INTEGER AND q.last_day
        UNION ALL
        SELECT q.participant_id, 0, 0, 1, NULL, m.met_on = q.last_day
            FROM mentoring m JOIN quiet q USING (participant_id)
            WHERE m.met_on BETWEEN q.last_day - $window::INTEGER AND q.last_day)
    GROUP BY 1),
scored AS (
    SELECT q.participant_id, q.program, q.site, q.enrolled_on, q.last_day AS last_contact,
           q.days_since AS days_since_contact,
           CASE WHEN q.last_day IS NULL THEN 'none since enrollment'
                ELSE concat_ws(' + ', CASE WHEN r.last_m THEN 'meeting' END,
                               CASE WHEN r.last_c THEN 'check-in' END,
                               CASE WHEN r.last_s THEN 'mentoring' END) END AS last_contact_type,
           coalesce(r.m, 0) AS meetings_4w, coalesce(r.c, 0) AS checkins_4w, coalesce(r.s, 0) AS mentoring_4w,
           coalesce(r.used, false) AS used_4w,
           $pts_engagement * exp(-($w_meeting * coalesce(r.m, 0) + $w_checkin * coalesce(r.c, 0)
                                   + $w_mentoring * coalesce(r.s, 0)) / 4.0) AS engagement_points,
           $pts_silence * least(q.days_since, $silence_days) / $silence_days AS silence_points,
           CASE WHEN coalesce(r.used, false) THEN $pts_use ELSE 0 END AS use_points
    FROM quiet q LEFT JOIN recent r USING (participant_id))
SELECT row_number() OVER (ORDER BY risk_score DESC, days_since_contact DESC, participant_id)::INTEGER AS rank, *
FROM (SELECT * EXCLUDE (engagement_points, silence_points, use_points),
             round(engagement_points + silence_points + use_points, 1) AS risk_score,
             round(engagement_points, 1) AS engagement_points, round(silence_points, 1) AS silence_points,
             use_points::DOUBLE AS use_points
      FROM scored)
ORDER BY rank"""


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
    where, params = filters.where("p")
    sql = _OUTREACH.format(where=where)
    frame = store.df(sql, {**params, **weights.params(), "as_of": as_of, "min_days": int(no_contact_days),
                               "max_days": None if max_days is None else int(max_days),
                               "window": RECENT_DAYS - 1})
    frame = _frame_dates(frame, "enrolled_on", "last_contact")
    frame["last_contact"] = [None if pd.isna(d) else d for d in frame["last_contact"]]
    frame["used_4w"] = frame["used_4w"].astype(bool)
    return frame[list(OUTREACH_COLUMNS)]

