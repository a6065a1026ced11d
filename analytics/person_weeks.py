"""Person-week table in counting-process form, built in DuckDB.

One row per participant and week since the start of follow-up while at risk:
week k covers days 7k..7k+6 after the start (enrollment for retention, the sobriety
start for sobriety). The row's interval is (start, stop] on a clock that counts the
start day as day 1, so week k is (7k, 7k+7] and a participant whose follow-up ends on
day s stops at s + 1. This gives every row a positive length, including an event on
day 0 (interval (0, 1]); Cox estimates depend only on the order of times, so the
shift changes nothing else.

Engagement columns per row: this week's meetings, check-ins and mentoring sessions;
the previous week's (the `_prev` columns: the default exposure, so the week someone
leaves cannot explain their leaving); and totals to date before this week. Only
activity inside each participant's follow-up counts. Check-in summaries for the week
(any use reported, mean craving, mean mood) feed the repeated-measures models.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analytics.filters import Filters
from analytics.outcomes import DESCRIPTORS, MISSING_LEVEL, OutcomeSettings, durations_sql, resolve_cutoff
from analytics.store import Store

ENGAGEMENT = ("meetings", "checkins", "mentoring")
LAGGED = tuple(f"{e}_prev" for e in ENGAGEMENT)

_PERSON_WEEKS = """
WITH dur AS ({durations}),
followed AS (
    SELECT participant_id, {descriptors}, start, stop, event, (stop - start) AS stop_day
    FROM dur WHERE left_out IS NULL),
activity AS (
    SELECT participant_id, attended_on AS day, 1 AS m, 0 AS c, 0 AS s, NULL::BOOLEAN AS used,
           NULL::INTEGER AS craving, NULL::INTEGER AS mood FROM attendance
    UNION ALL SELECT participant_id, checked_in_on, 0, 1, 0, used, craving, mood FROM checkins
    UNION ALL SELECT participant_id, met_on, 0, 0, 1, NULL, NULL, NULL FROM mentoring),
weekly AS (
    SELECT a.participant_id, (a.day - f.start) // 7 AS week,
           sum(m)::INTEGER AS meetings, sum(c)::INTEGER AS checkins, sum(s)::INTEGER AS mentoring,
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
       cur.used_any, cur.craving, cur.mood
FROM weeks w
LEFT JOIN weekly cur ON cur.participant_id = w.participant_id AND cur.week = w.week
LEFT JOIN weekly prev ON prev.participant_id = w.participant_id AND prev.week = w.week - 1
WINDOW to_date AS (PARTITION BY w.participant_id ORDER BY w.week
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
ORDER BY w.participant_id, w.week
"""


@dataclass
class PersonWeeks:
    outcome: str
    frame: pd.DataFrame
    left_out: dict[str, int]

    @property
    def participants(self) -> int:
        return int(self.frame.participant_id.nunique())

    @property
    def events(self) -> int:
        return int(self.frame.event.sum())


def person_weeks_sql(store: Store, outcome: str, settings: OutcomeSettings,
                     filters: Filters) -> tuple[str, dict]:
    cutoff = resolve_cutoff(store, settings)
    durations, params = durations_sql(outcome, cutoff, settings, filters)
    sql = _PERSON_WEEKS.format(
        durations=durations,
        descriptors=", ".join(f"coalesce({c}, '{MISSING_LEVEL}') AS {c}" for c in DESCRIPTORS),
        w_descriptors=", ".join(f"w.{c}" for c in DESCRIPTORS))
    return sql, params


def person_weeks(store: Store, outcome: str, settings: OutcomeSettings = OutcomeSettings(),
                 filters: Filters = Filters()) -> PersonWeeks:
    """The person-week table for `outcome`, one row per participant-week at risk."""
    sql, params = person_weeks_sql(store, outcome, settings, filters)
    frame = store.categorical_df(sql, params)
    frame["participant_id"] = frame.participant_id.astype(str)
    frame["event"] = frame.event.astype(bool)
    left_sql, _ = durations_sql(outcome, resolve_cutoff(store, settings), settings, filters)
    left = store.rows(f"SELECT left_out, count(*) FROM ({left_sql}) WHERE left_out IS NOT NULL GROUP BY 1", params)
    return PersonWeeks(outcome, frame, dict(left))
