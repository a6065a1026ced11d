"""The Engagement page (analytics.analyses.activity) as SQL: attendance over time, the
weekday pattern, check-in adherence bands and mentor caseloads (the outreach list: outreach.py).

Activity of a participant with a recorded exit before the period's first day is never
counted, as in the Overview KPIs (analytics.store.queries.kpis).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_sql, key_columns, secret_params
from analytics.store.queries.filters import ParticipantFilter, participant_where
from analytics.store.queries.kpis import adherence_sql, period_params

__all__ = ["adherence_bands", "adherence_by_participant", "attendance", "mentor_caseloads",
           "weekday_counts"]

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


def attendance(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date, freq: str) -> pd.DataFrame:
    """Meetings attended in the period per (bucket, meeting_type, modality): bucket = the
    day date_trunc(`freq`) gives ('week': the Monday, 'month': the first), meetings,
    participants (distinct), minutes (sum of those recorded; NULL if none)."""
    where, params = participant_where(filters, "p")
    return store.df(_ATTENDANCE.format(where=where), {**params, **period_params(start, end), "freq": freq})


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


def weekday_counts(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per ISO weekday the period has (1 = Monday): weekday, day_name, days_in_period, and
    the meetings, checkins and mentoring sessions dated on such days in the period."""
    where, params = participant_where(filters, "p")
    return store.df(_WEEKDAY.format(where=where), {**params, **period_params(start, end)})


# The labels are analytics.analyses.activity.ADHERENCE_BANDS.
_BAND = ("CASE WHEN weeks_with_checkin = 0 THEN '0%' "
         "WHEN weeks_with_checkin = weeks THEN '100%' "
         "WHEN weeks_with_checkin / weeks < 0.25 THEN '1-24%' "
         "WHEN weeks_with_checkin / weeks < 0.50 THEN '25-49%' "
         "WHEN weeks_with_checkin / weeks < 0.75 THEN '50-74%' ELSE '75-99%' END")


def adherence_by_participant(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
                             full_weeks: list[dt.date]) -> pd.DataFrame:
    """One row per active participant with an eligible week: participant_id, program, site,
    weeks, weeks_with_checkin, adherence, band; by participant_id."""
    sql, params = adherence_sql(filters, start, end, full_weeks)
    return store.df(f"""
        SELECT participant_id, program, site, weeks, weeks_with_checkin,
               weeks_with_checkin / weeks AS adherence, {_BAND} AS band
        FROM ({sql}) WHERE weeks > 0 ORDER BY participant_id""", params)


def adherence_bands(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
                    full_weeks: list[dt.date], bands: tuple[str, ...], keyed: bool = False) -> pd.DataFrame:
    """band, participants: how many active participants with an eligible week fall in each
    of `bands` (in that order, 0 when none). ``keyed``: also participants_key, the cell key of
    each band's people (analytics.publish.cellkey), for the download."""
    sql, params = adherence_sql(filters, start, end, full_weeks)
    keys = key_columns(keyed, participants_key=cell_key_sql("per.participant_id"))
    return store.df(f"""
        WITH bands AS (SELECT unnest($bands::VARCHAR[]) AS band, unnest(range(len($bands::VARCHAR[]))) AS i),
        per AS (SELECT participant_id, {_BAND} AS band FROM ({sql}) WHERE weeks > 0)
        SELECT b.band, count(per.band)::INTEGER AS participants{keys}
        FROM bands b LEFT JOIN per USING (band) GROUP BY b.band, b.i ORDER BY b.i""",
        {**params, "bands": list(bands), **(secret_params(store) if keyed else {})})


_CASELOAD = """
WITH p AS (SELECT p.participant_id, p.program, p.site FROM participants p WHERE {where}
           AND p.enrolled_on <= $period_end::DATE
           AND (p.exited_on IS NULL OR p.exited_on >= $period_start::DATE)),
s AS (SELECT m.mentor_id, m.participant_id, any_value(p.program) AS program, any_value(p.site) AS site,
             count(*) AS sessions
      FROM mentoring m JOIN p USING (participant_id)
      WHERE m.met_on BETWEEN $period_start::DATE AND $period_end::DATE
      GROUP BY m.mentor_id, m.participant_id)
SELECT mentor_id, count(*)::INTEGER AS active_mentees{keys}, sum(sessions)::INTEGER AS sessions,
       string_agg(DISTINCT program, ', ' ORDER BY program) AS programs,
       string_agg(DISTINCT coalesce(site, '(not recorded)'), ', ' ORDER BY coalesce(site, '(not recorded)')) AS sites
FROM s GROUP BY mentor_id ORDER BY active_mentees DESC, sessions DESC, mentor_id"""


def mentor_caseloads(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
                     keyed: bool = False) -> pd.DataFrame:
    """Per mentor with a session in the period: mentor_id, active_mentees, sessions,
    programs, sites (of those mentees); largest caseload first. ``keyed``: also
    active_mentees_key, the cell key of the mentor's mentees (for the download)."""
    where, params = participant_where(filters, "p")
    keys = key_columns(keyed, active_mentees_key=cell_key_sql("participant_id"))
    return store.df(_CASELOAD.format(where=where, keys=keys),
                    {**params, **period_params(start, end), **(secret_params(store) if keyed else {})})
