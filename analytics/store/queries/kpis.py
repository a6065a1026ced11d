"""The Overview KPIs (analytics.analyses.kpis) as SQL: active participants, check-in
adherence weeks, retention durations counted per group, weekly trends, per program.

A reporting period is its first and last day (`start`, `end`, both included); `weeks`
are the Mondays of the ISO weeks a query reports on.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_sql, key_columns, secret_params
from analytics.store.queries.filters import ParticipantFilter, check_columns, participant_where
from analytics.store.queries.outcomes import COHORT_COLUMNS, durations_sql

__all__ = ["PEOPLE_COUNTS", "active_sql", "adherence_sql", "by_program", "period_counts", "period_params", "retention_counts",
           "weekly_trends"]


def period_params(start: dt.date, end: dt.date) -> dict:
    """The bound parameters of a reporting period."""
    return {"period_start": start, "period_end": end}


# Every contact in the period, one row each: m/c/s flag a meeting, check-in or mentoring session.
_PERIOD_ACTIVITY = """
    SELECT participant_id, attended_on AS day, 1 AS m, 0 AS c, 0 AS s FROM attendance
        WHERE attended_on BETWEEN $period_start::DATE AND $period_end::DATE
    UNION ALL
    SELECT participant_id, checked_in_on, 0, 1, 0 FROM checkins
        WHERE checked_in_on BETWEEN $period_start::DATE AND $period_end::DATE
    UNION ALL
    SELECT participant_id, met_on, 0, 0, 1 FROM mentoring
        WHERE met_on BETWEEN $period_start::DATE AND $period_end::DATE"""

_ACTIVE = """
    SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on,
           sum(a.m)::INTEGER AS meetings, sum(a.c)::INTEGER AS checkins, sum(a.s)::INTEGER AS mentoring,
           max(a.day) AS last_day
    FROM (""" + _PERIOD_ACTIVITY + """
    ) a JOIN participants p USING (participant_id)
    WHERE {where} AND p.enrolled_on <= $period_end::DATE
      AND (p.exited_on IS NULL OR p.exited_on >= $period_start::DATE)
    GROUP BY ALL"""


def active_sql(filters: ParticipantFilter, start: dt.date, end: dt.date) -> tuple[str, dict]:
    """SQL for the active participants of the period, one row each: participant_id, program,
    site, enrolled_on, exited_on, meetings, checkins, mentoring (counts in the period) and
    last_day (their last engagement in the period)."""
    where, params = participant_where(filters, "p")
    return _ACTIVE.format(where=where), {**params, **period_params(start, end)}


_ADHERENCE = """
WITH active AS ({active}),
weeks AS (SELECT unnest($weeks::DATE[]) AS monday),
eligible AS (
    SELECT a.participant_id, w.monday FROM active a CROSS JOIN weeks w
    WHERE a.enrolled_on <= w.monday AND (a.exited_on IS NULL OR a.exited_on >= w.monday + 6)),
checked AS (
    SELECT DISTINCT participant_id, date_trunc('week', checked_in_on)::DATE AS monday FROM checkins
    WHERE checked_in_on BETWEEN $period_start::DATE AND $period_end::DATE),
per AS (
    SELECT e.participant_id, count(*)::INTEGER AS weeks, count(c.monday)::INTEGER AS weeks_with_checkin
    FROM eligible e LEFT JOIN checked c USING (participant_id, monday)
    GROUP BY ALL)
SELECT a.*, coalesce(per.weeks, 0) AS weeks, coalesce(per.weeks_with_checkin, 0) AS weeks_with_checkin
FROM active a LEFT JOIN per USING (participant_id)"""


def adherence_sql(filters: ParticipantFilter, start: dt.date, end: dt.date,
                  full_weeks: list[dt.date]) -> tuple[str, dict]:
    """SQL for one row per active participant of the period: the columns of active_sql plus
    `weeks` (of `full_weeks`, the Mondays of the whole weeks in the period: those they were
    enrolled by and had no exit before the Sunday of) and `weeks_with_checkin`."""
    active, params = active_sql(filters, start, end)
    return _ADHERENCE.format(active=active), {**params, "weeks": full_weeks}


def period_counts(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
                  full_weeks: list[dt.date]) -> dict[str, int]:
    """The Overview's counts for one period: active, meetings (of the active), mentored
    (active with a session), weeks / weeks_checked (adherence weeks, and those with a
    check-in) and new (enrolled in the period)."""
    sql, params = adherence_sql(filters, start, end, full_weeks)
    active, meetings, mentored, weeks, weeks_checked = store.rows(f"""
        SELECT count(*), coalesce(sum(meetings), 0), count(*) FILTER (WHERE mentoring > 0),
               coalesce(sum(weeks), 0), coalesce(sum(weeks_with_checkin), 0)
        FROM ({sql})""", params)[0]
    where, fparams = participant_where(filters, "p")
    new = store.scalar(f"""SELECT count(*) FROM participants p WHERE {where}
                           AND p.enrolled_on BETWEEN $period_start::DATE AND $period_end::DATE""",
                       {**fparams, **period_params(start, end)})
    return {"active": int(active), "meetings": int(meetings), "mentored": int(mentored),
            "weeks": int(weeks), "weeks_checked": int(weeks_checked), "new": int(new)}


_RETENTION_COUNTS = """
WITH dur AS ({durations})
SELECT {group} AS grp, stop - start AS ndays, event, $cutoff::DATE - enrolled_on AS potential,
       count(*) AS n{keys}
FROM dur WHERE left_out IS NULL GROUP BY ALL"""


def retention_counts(store: Store, filters: ParticipantFilter, cutoff: dt.date, inactivity_days: int,
                     group: str, extra_params: dict | None = None, keyed: bool = False) -> pd.DataFrame:
    """Retention durations counted per (grp, ndays, event, potential): grp is the durations
    column `group` (a participants column or cohort_month / cohort_quarter / cohort_year),
    ndays = stop - start, potential = days from enrollment to the cutoff, n = participants.
    ``keyed``: also n_key, the cell key of the row's participants (keys add up over rows)."""
    check_columns([group], COHORT_COLUMNS)
    sql, params = durations_sql("retention", cutoff, inactivity_days, filters)
    keys = key_columns(keyed, n_key=cell_key_sql("participant_id"))
    return store.df(_RETENTION_COUNTS.format(durations=sql, group=group, keys=keys),
                    {**params, **(extra_params or {}), **(secret_params(store) if keyed else {})})


_TRENDS = """
WITH p AS (SELECT p.participant_id, p.enrolled_on, p.exited_on FROM participants p WHERE {where}),
act AS (""" + _PERIOD_ACTIVITY + """),
per AS (
    SELECT date_trunc('week', a.day)::DATE AS monday, a.participant_id,
           sum(a.m) AS m, sum(a.c) AS c, sum(a.s) AS s
    FROM act a JOIN p USING (participant_id)
    WHERE p.enrolled_on <= least(date_trunc('week', a.day)::DATE + 6, $period_end::DATE)
      AND (p.exited_on IS NULL OR p.exited_on >= greatest(date_trunc('week', a.day)::DATE, $period_start::DATE))
    GROUP BY ALL),
wk AS (SELECT monday, count(*) AS active, sum(m) AS meetings, sum(c) AS checkins, sum(s) AS mentoring{wk_keys}
       FROM per GROUP BY monday),
enr AS (SELECT date_trunc('week', enrolled_on)::DATE AS monday, count(*) AS new_enrollments{enr_keys} FROM p
        WHERE enrolled_on BETWEEN $period_start::DATE AND $period_end::DATE GROUP BY 1),
weeks AS (SELECT unnest($weeks::DATE[]) AS monday)
SELECT w.monday AS week_start, strftime(w.monday, '%G-W%V') AS iso_week,
       greatest(w.monday, $period_start::DATE) AS first_day, least(w.monday + 6, $period_end::DATE) AS last_day,
       coalesce(wk.active, 0)::INTEGER AS active, coalesce(wk.meetings, 0)::INTEGER AS meetings,
       coalesce(wk.checkins, 0)::INTEGER AS checkins, coalesce(wk.mentoring, 0)::INTEGER AS mentoring,
       coalesce(enr.new_enrollments, 0)::INTEGER AS new_enrollments{out_keys}
FROM weeks w LEFT JOIN wk USING (monday) LEFT JOIN enr USING (monday)
ORDER BY w.monday"""


def weekly_trends(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
                  weeks: list[dt.date], keyed: bool = False) -> pd.DataFrame:
    """One row per Monday of `weeks` (every week overlapping the period), oldest first:
    week_start, iso_week, first_day, last_day (the week's days inside the period), and for
    those days active, meetings, checkins, mentoring and new_enrollments (0 when none).
    ``keyed``: also active_key and new_enrollments_key, the cell keys of those people
    (analytics.publish.cellkey), for what is published."""
    where, params = participant_where(filters, "p")
    sql = _TRENDS.format(
        where=where, wk_keys=key_columns(keyed, active_key=cell_key_sql("participant_id")),
        enr_keys=key_columns(keyed, new_key=cell_key_sql("participant_id")),
        out_keys=key_columns(keyed, active_key="coalesce(wk.active_key, 0)::UBIGINT",
                             new_enrollments_key="coalesce(enr.new_key, 0)::UBIGINT"))
    return store.df(sql, {**params, **period_params(start, end), "weeks": weeks,
                          **(secret_params(store) if keyed else {})})


_BY_PROGRAM = """
WITH a AS ({active}),
progs AS (SELECT DISTINCT p.program FROM participants p WHERE {where}),
act AS (SELECT program, count(*) AS active, sum(meetings) AS meetings, sum(checkins) AS checkins,
               sum(mentoring) AS mentoring_sessions, count(*) FILTER (WHERE mentoring > 0) AS mentored{act_keys}
        FROM a GROUP BY program),
new AS (SELECT p.program, count(*) AS new_enrollments{new_keys} FROM participants p
        WHERE {where} AND p.enrolled_on BETWEEN $period_start::DATE AND $period_end::DATE GROUP BY 1),
chk AS (SELECT a.program, count(DISTINCT c.participant_id) AS checked_in,
               count(*) FILTER (WHERE c.used) AS checkins_reporting_use,
               avg(c.craving) AS mean_craving, avg(c.mood) AS mean_mood{chk_keys}
        FROM checkins c JOIN a USING (participant_id)
        WHERE c.checked_in_on BETWEEN $period_start::DATE AND $period_end::DATE GROUP BY 1)
SELECT progs.program, coalesce(new.new_enrollments, 0)::INTEGER AS new_enrollments,
       coalesce(act.active, 0)::INTEGER AS active, coalesce(act.meetings, 0)::INTEGER AS meetings,
       coalesce(act.checkins, 0)::INTEGER AS checkins,
       coalesce(act.mentoring_sessions, 0)::INTEGER AS mentoring_sessions,
       coalesce(act.mentored, 0)::INTEGER AS mentored, coalesce(chk.checked_in, 0)::INTEGER AS checked_in,
       coalesce(chk.checkins_reporting_use, 0)::INTEGER AS checkins_reporting_use,
       chk.mean_craving, chk.mean_mood{out_keys}
FROM progs LEFT JOIN act USING (program) LEFT JOIN new USING (program) LEFT JOIN chk USING (program)
ORDER BY progs.program"""


PEOPLE_COUNTS = ("new_enrollments", "active", "mentored", "checked_in")  # of by_program: counts of people


def by_program(store: Store, filters: ParticipantFilter, start: dt.date, end: dt.date,
               keyed: bool = False) -> pd.DataFrame:
    """Per program of the filters: new_enrollments, active, meetings, checkins,
    mentoring_sessions, mentored, checked_in, checkins_reporting_use, mean_craving,
    mean_mood (activity of the period's active participants). ``keyed``: also the cell key
    (analytics.publish.cellkey) of each count of people (PEOPLE_COUNTS), as <count>_key."""
    active, params = active_sql(filters, start, end)
    where, _ = participant_where(filters, "p")
    key = cell_key_sql
    sql = _BY_PROGRAM.format(
        active=active, where=where,
        act_keys=key_columns(keyed, active_key=key("participant_id"),
                             mentored_key=key("participant_id", when="mentoring > 0")),
        new_keys=key_columns(keyed, new_enrollments_key=key("p.participant_id")),
        chk_keys=key_columns(keyed, checked_in_key=key("c.participant_id", distinct=True)),
        out_keys=key_columns(keyed, **{f"{c}_key": f"coalesce({t}.{c}_key, 0)::UBIGINT" for c, t in
                                       (("new_enrollments", "new"), ("active", "act"), ("mentored", "act"),
                                        ("checked_in", "chk"))}))
    return store.df(sql, {**params, **(secret_params(store) if keyed else {})})
