"""SQL of the outreach ranking: one row per participant and 28-day window (landmark).

Landmarks fall every `horizon` days back from `as_of`: s_j = as_of - horizon * j. A
participant is in window j when, at s_j, they are enrolled (enrolled_on <= s_j), have no
exit recorded on or before s_j, and have not left by the retention definition (their last
contact, or their enrollment if later, is fewer than `inactivity_days` before s_j).

Features use only data dated on or before s_j: days since the last contact, in-person
group meetings, online community meetings (meeting_type online_community or modality
online), check-ins and mentoring sessions in the `horizon` days up to s_j, whether the
last check-in in those days reported use, days since enrollment.

Outcome (j >= 1, dated in real time so that it is known by s_j + horizon): the first of
  - a recorded exit in (s_j, s_j + horizon]: an event if dropped_out, else censored there;
  - the day the participant is first counted as left by the inactivity rule: last
    contact + inactivity_days, if that falls in the window and no contact comes before it
    (a contact on that very day keeps them in);
otherwise censored at `horizon` days. `stop` is the day of the window (1..horizon).
Window 0 (s_0 = as_of) has no outcome yet: it is the list to rank today.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.outcomes.filters import Filters
from analytics.outcomes.person_weeks import ONLINE_MEETING_SQL
from analytics.store.connection import Store

__all__ = ["outreach_windows"]

_WINDOWS = """
WITH p AS (
    SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on, p.exit_reason
    FROM participants p WHERE {where} AND p.enrolled_on <= $as_of::DATE),
activity AS (
    SELECT participant_id, attended_on AS d, CASE WHEN {online} THEN 1 ELSE 0 END AS kind, NULL::BOOLEAN AS used
        FROM attendance WHERE attended_on <= $as_of::DATE
    UNION ALL SELECT participant_id, checked_in_on, 2, used FROM checkins WHERE checked_in_on <= $as_of::DATE
    UNION ALL SELECT participant_id, met_on, 3, NULL FROM mentoring WHERE met_on <= $as_of::DATE),
buckets AS (  -- per participant and window j: the activity dated in (s_j - horizon, s_j]
    SELECT a.participant_id, ($as_of::DATE - a.d) // $horizon::INTEGER AS j,
           count(*) FILTER (WHERE kind = 0)::INTEGER AS in_person, count(*) FILTER (WHERE kind = 1)::INTEGER AS online,
           count(*) FILTER (WHERE kind = 2)::INTEGER AS checkins, count(*) FILTER (WHERE kind = 3)::INTEGER AS mentoring,
           coalesce(arg_max(used, d) FILTER (WHERE kind = 2), false) AS used_last,
           max(d) AS last_day, min(d) AS first_day
    FROM activity a JOIN p USING (participant_id) GROUP BY ALL),
grid AS (
    SELECT p.*, unnest(range(0, ($as_of::DATE - p.enrolled_on) // $horizon::INTEGER + 1)) AS j FROM p),
joined AS (
    SELECT g.*, ($as_of::DATE - ($horizon::INTEGER * g.j)::INTEGER) AS s,
           coalesce(b.in_person, 0) AS in_person, coalesce(b.online, 0) AS online,
           coalesce(b.checkins, 0) AS checkins, coalesce(b.mentoring, 0) AS mentoring,
           coalesce(b.used_last, false) AS used_last,
           max(b.last_day) OVER (PARTITION BY g.participant_id ORDER BY g.j DESC ROWS UNBOUNDED PRECEDING) AS seen,
           nb.first_day AS next_contact
    FROM grid g
    LEFT JOIN buckets b ON b.participant_id = g.participant_id AND b.j = g.j
    LEFT JOIN buckets nb ON nb.participant_id = g.participant_id AND nb.j = g.j - 1),
state AS (
    SELECT *, greatest(coalesce(seen, enrolled_on), enrolled_on) AS last_contact,
           greatest(coalesce(seen, enrolled_on), enrolled_on) + $inactivity::INTEGER AS silent_day,
           exited_on IS NOT NULL AND exited_on <= s AS exited
    FROM joined WHERE s >= enrolled_on),
windows AS (
    SELECT *, s - last_contact < $inactivity::INTEGER AND NOT exited AS active,
           j > 0 AND silent_day <= s + $horizon::INTEGER
               AND (next_contact IS NULL OR next_contact > silent_day) AS goes_silent,
           j > 0 AND exited_on IS NOT NULL AND exited_on <= s + $horizon::INTEGER AS exit_in
    FROM state)
SELECT participant_id, program, site, j, s, enrolled_on, last_contact,
       (s - last_contact)::INTEGER AS days_silent, (s - enrolled_on)::INTEGER AS tenure_days,
       in_person, online, checkins, mentoring, used_last, active,
       CASE WHEN j = 0 THEN 0
            WHEN exit_in AND (NOT goes_silent OR exited_on <= silent_day) THEN exited_on - s
            WHEN goes_silent THEN silent_day - s
            ELSE $horizon::INTEGER END::INTEGER AS stop,
       CASE WHEN exit_in AND (NOT goes_silent OR exited_on <= silent_day) THEN exit_reason = 'dropped_out'
            ELSE coalesce(goes_silent, false) END AS event
FROM windows
WHERE (active OR (j = 0 AND NOT exited)) AND j <= $max_j
ORDER BY j, participant_id
"""


def outreach_windows(store: Store, filters: Filters, as_of: dt.date, *, horizon: int, inactivity_days: int,
                     windows: int | None = None) -> pd.DataFrame:
    """The window table (module docstring): rows of active participants for windows 0..`windows`
    (all back to the first enrollment when None), plus at window 0 those not active (active =
    false: silent for inactivity_days or more, with no recorded exit), sorted by window and id."""
    where, params = filters.where("p")
    frame = store.categorical_df(_WINDOWS.format(where=where, online=ONLINE_MEETING_SQL), {
        **params, "as_of": as_of, "horizon": int(horizon), "inactivity": int(inactivity_days),
        "max_j": 2**31 - 1 if windows is None else int(windows)})
    frame["participant_id"] = frame.participant_id.astype(str)
    return frame
