"""The outcome definitions (analytics.outcomes.definitions) and the person-week table
(analytics.outcomes.person_weeks) as SQL: the cutoff, one durations row per participant,
and the parts the person-week arrays are counted from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.filters import ParticipantFilter, check_columns, in_sites, participant_where

__all__ = ["COHORT_COLUMNS", "durations", "durations_sql", "latest_date", "person_week_parts",
           "person_weeks_sql"]

COHORT_COLUMNS = frozenset({"cohort_month", "cohort_quarter", "cohort_year"})  # added by _BASE


def latest_date(store: Store, sites: Sequence[str] = ()) -> dt.date | None:
    """The latest date of the participants at `sites` (empty: anywhere in the store): the default cutoff."""
    (people, params), (attendance, _), (checkins, _), (mentoring, _) = (
        in_sites(t, sites) for t in ("participants", "attendance", "checkins", "mentoring"))
    return store.scalar(f"""
        SELECT max(d) FROM (
            SELECT max(greatest(enrolled_on, coalesce(exited_on, enrolled_on))) AS d FROM {people}
            UNION ALL SELECT max(attended_on) FROM {attendance}
            UNION ALL SELECT max(checked_in_on) FROM {checkins}
            UNION ALL SELECT max(met_on) FROM {mentoring})""", params or None)


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


def durations_sql(outcome: str, cutoff: dt.date, inactivity_days: int,
                  filters: ParticipantFilter) -> tuple[str, dict]:
    """The durations query ('sobriety' or 'retention') and its named parameters, for use as
    a CTE by other queries: every participant column, sober_from, cohort_month /
    cohort_quarter / cohort_year, start, stop, event, reason (retention also last_engaged
    and event_type), and left_out (why a participant is not followed; NULL if followed)."""
    where, params = participant_where(filters, "p")
    base = _BASE.format(where=where)
    if outcome == "sobriety":
        return _SOBRIETY.format(base=base), {**params, "cutoff": cutoff}
    if outcome == "retention":
        return _RETENTION.format(base=base), {**params, "cutoff": cutoff, "days": inactivity_days}
    raise ValueError(f"unknown outcome {outcome!r}")


def durations(store: Store, outcome: str, cutoff: dt.date, inactivity_days: int,
              filters: ParticipantFilter, descriptors: tuple[str, ...], missing_level: str) -> pd.DataFrame:
    """The rows of durations_sql, every participant of the filters once, sorted by id, with
    `days` (stop - start) and empty descriptors as `missing_level`: done here, in one pass,
    because the same work in pandas grew faster than the data (issue 11)."""
    sql, params = durations_sql(outcome, cutoff, inactivity_days, filters)
    check_columns(descriptors)
    filled = ", ".join(f"coalesce({c}, $missing_level) AS {c}" for c in descriptors)
    return store.df(f"SELECT * REPLACE ({filled}), (stop - start)::INTEGER AS days FROM ({sql}) d "
                    "ORDER BY participant_id", {**params, "missing_level": missing_level})


# --- person-weeks ---------------------------------------------------------------------

# The rule for an online meeting (the rest are in-person groups), as SQL on attendance.
ONLINE_MEETING_SQL = "(meeting_type = 'online_community' OR modality = 'online')"

_PERSON_WEEKS = """
WITH dur AS ({durations}),
followed AS (
    SELECT participant_id, {descriptors}, start, stop, event, (stop - start) AS stop_day
    FROM dur WHERE left_out IS NULL),
activity AS (
    SELECT participant_id, attended_on AS day, 1 AS m, 0 AS c, 0 AS s, """ + ONLINE_MEETING_SQL + """::INTEGER AS o,
           NULL::BOOLEAN AS used, NULL::INTEGER AS craving, NULL::INTEGER AS mood FROM attendance
    UNION ALL SELECT participant_id, checked_in_on, 0, 1, 0, 0, used, craving, mood FROM checkins
    UNION ALL SELECT participant_id, met_on, 0, 0, 1, 0, NULL, NULL, NULL FROM mentoring),
weekly AS (
    SELECT a.participant_id, (a.day - f.start) // 7 AS week,
           sum(m)::INTEGER AS meetings, sum(c)::INTEGER AS checkins, sum(s)::INTEGER AS mentoring,
           sum(o)::INTEGER AS online,
           bool_or(used) AS used_any, avg(craving) AS craving, avg(mood) AS mood
    FROM activity a JOIN followed f USING (participant_id)
    WHERE a.day >= f.start AND a.day <= f.stop
    GROUP BY ALL),
weeks AS (
    SELECT f.*, unnest(range(0, f.stop_day // 7 + 1)) AS week FROM followed f)
SELECT w.participant_id, {w_descriptors}, w.week,
       7 * w.week AS tstart, least(7 * w.week + 7, w.stop_day + 1) AS tstop,
       (w.event AND w.week = w.stop_day // 7) AS event,
       coalesce(cur.meetings, 0) AS meetings, coalesce(cur.checkins, 0) AS checkins,
       coalesce(cur.mentoring, 0) AS mentoring,
       coalesce(prev.meetings, 0) AS meetings_prev, coalesce(prev.checkins, 0) AS checkins_prev,
       coalesce(prev.mentoring, 0) AS mentoring_prev,
       coalesce(sum(coalesce(cur.meetings, 0)) OVER to_date, 0)::INTEGER AS meetings_to_date,
       coalesce(sum(coalesce(cur.checkins, 0)) OVER to_date, 0)::INTEGER AS checkins_to_date,
       coalesce(sum(coalesce(cur.mentoring, 0)) OVER to_date, 0)::INTEGER AS mentoring_to_date,
       cur.used_any, cur.craving, cur.mood,
       coalesce(cur.online, 0) AS online, coalesce(prev.online, 0) AS online_prev
FROM weeks w
LEFT JOIN weekly cur ON cur.participant_id = w.participant_id AND cur.week = w.week
LEFT JOIN weekly prev ON prev.participant_id = w.participant_id AND prev.week = w.week - 1
WINDOW to_date AS (PARTITION BY w.participant_id ORDER BY w.week
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
ORDER BY w.participant_id, w.week
"""

# Every participant of the filters once (the durations query runs once, into a temporary
# table of the query's own cursor): descriptors, days = stop - start, event, why left out,
# and for those followed the first person-week row (participants sorted by id, week k of
# a participant at row first_row + k).
_FOLLOWED = """
CREATE TEMP TABLE pw_followed AS
WITH dur AS ({durations}),
weeks AS (
    SELECT *, CASE WHEN left_out IS NULL AND stop >= start THEN (stop - start) // 7 + 1 ELSE 0 END AS weeks
    FROM dur)
SELECT participant_id, {descriptors}, start, stop, (stop - start)::BIGINT AS days, event, left_out,
       sum(weeks) OVER (ORDER BY participant_id ROWS UNBOUNDED PRECEDING) - weeks AS first_row, weeks
FROM weeks
"""
_PEOPLE = "SELECT participant_id, {descriptors}, days, event, left_out FROM pw_followed ORDER BY participant_id"

# One row per activity inside follow-up: slot = 4 * (its person-week row) + kind (0 in-person
# meeting, 1 check-in, 2 mentoring, 3 online meeting), and day = days since the start.
_ACTIVITY = """
WITH activity AS (
    SELECT participant_id, attended_on AS day, CASE WHEN """ + ONLINE_MEETING_SQL + """ THEN 3 ELSE 0 END AS kind
    FROM attendance
    UNION ALL SELECT participant_id, checked_in_on, 1 FROM checkins
    UNION ALL SELECT participant_id, met_on, 2 FROM mentoring)
SELECT (4 * (f.first_row + (a.day - f.start) // 7) + a.kind)::INTEGER AS slot, (a.day - f.start)::INTEGER AS day
FROM activity a JOIN pw_followed f USING (participant_id)
WHERE f.weeks > 0 AND a.day >= f.start AND a.day <= f.stop
"""
# One row per check-in inside follow-up: its person-week row, used, craving, mood (-1: none).
_CHECKINS = """
SELECT (f.first_row + (c.checked_in_on - f.start) // 7)::INTEGER AS row, coalesce(c.used::TINYINT, -1)::TINYINT AS used,
       coalesce(c.craving, -1)::TINYINT AS craving, coalesce(c.mood, -1)::TINYINT AS mood
FROM checkins c JOIN pw_followed f USING (participant_id)
WHERE f.weeks > 0 AND c.checked_in_on >= f.start AND c.checked_in_on <= f.stop
"""


def _descriptors(descriptors: tuple[str, ...], missing_level: str) -> tuple[str, dict]:
    """`descriptor` columns with NULL shown as `missing_level` (a bound parameter)."""
    check_columns(descriptors)
    return ", ".join(f"coalesce({c}, $missing_level) AS {c}" for c in descriptors), {"missing_level": missing_level}


def person_weeks_sql(outcome: str, cutoff: dt.date, inactivity_days: int, filters: ParticipantFilter,
                     descriptors: tuple[str, ...], missing_level: str) -> tuple[str, dict]:
    """The person-week table as one SQL query (the reference definition; see
    analytics.outcomes.person_weeks) and its named parameters."""
    durations, params = durations_sql(outcome, cutoff, inactivity_days, filters)
    selected, more = _descriptors(descriptors, missing_level)
    sql = _PERSON_WEEKS.format(durations=durations, descriptors=selected,
                               w_descriptors=", ".join(f"w.{c}" for c in descriptors))
    return sql, {**params, **more}


def person_week_parts(store: Store, outcome: str, cutoff: dt.date, inactivity_days: int,
                      filters: ParticipantFilter, descriptors: tuple[str, ...],
                      missing_level: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the person-week arrays are counted from, through Arrow (text as categoricals):

    everyone: participant_id, the descriptors, days (stop - start), event, left_out; every
        participant of the filters once, sorted by id.
    activity: slot (4 x person-week row + kind: 0 in-person meeting, 1 check-in, 2 mentoring,
    3 online meeting) and day
        (days since the start), one row per activity inside follow-up.
    checkins: row (person-week row), used, craving, mood (-1 where not recorded), one row
        per check-in inside follow-up.
    Person-week rows number the followed participants' weeks in id order, week by week.
    """
    durations, params = durations_sql(outcome, cutoff, inactivity_days, filters)
    selected, more = _descriptors(descriptors, missing_level)
    session = store.session()  # the temporary table lives on this cursor only
    try:
        session.execute(_FOLLOWED.format(durations=durations, descriptors=selected), {**params, **more})
        everyone = session.categorical_df(_PEOPLE.format(descriptors=", ".join(descriptors)))
        activity = session.categorical_df(_ACTIVITY)  # numeric only, via Arrow
        checkins = session.categorical_df(_CHECKINS)
    finally:
        session.execute("DROP TABLE IF EXISTS pw_followed")
    return everyone, activity, checkins
