"""SQL of the outreach ranking: the participants of the filters, and their activity summed
per 28-day bucket before the reference day.

Days are counted back from `as_of` ("ago": as_of - date). Bucket j holds the activity
dated in (as_of - horizon (j + 1), as_of - horizon j], i.e. the `horizon` days up to the
landmark s_j = as_of - horizon j. Only data dated on or before `as_of` is read; an exit
recorded after it is not known then. analytics.analyses.outreach builds the landmark
windows from these two small results.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.queries.filters import ParticipantFilter, participant_where
from analytics.store.queries.outcomes import ONLINE_MEETING_SQL
from analytics.store.connection import Store

__all__ = ["outreach_activity", "outreach_people"]

_PEOPLE = """
SELECT (row_number() OVER (ORDER BY p.participant_id) - 1)::INTEGER AS person, p.participant_id, p.program, p.site,
       ($as_of::DATE - p.enrolled_on)::INTEGER AS enrolled_ago,
       CASE WHEN p.exited_on <= $as_of::DATE THEN ($as_of::DATE - p.exited_on)::INTEGER END AS exited_ago,
       coalesce(p.exited_on <= $as_of::DATE AND p.exit_reason = 'dropped_out', false) AS dropped_out
FROM participants p WHERE {where} AND p.enrolled_on <= $as_of::DATE
ORDER BY p.participant_id
"""

# kind: 0 in-person group meeting, 1 online community meeting, 2 check-in, 3 mentoring session
_ACTIVITY = """
WITH p AS (SELECT (row_number() OVER (ORDER BY p.participant_id) - 1)::INTEGER AS person, p.participant_id
           FROM participants p WHERE {where} AND p.enrolled_on <= $as_of::DATE),
activity AS (
    SELECT participant_id, attended_on AS d, CASE WHEN {online} THEN 1 ELSE 0 END AS kind, NULL::BOOLEAN AS used
        FROM attendance WHERE attended_on <= $as_of::DATE
    UNION ALL SELECT participant_id, checked_in_on, 2, used FROM checkins WHERE checked_in_on <= $as_of::DATE
    UNION ALL SELECT participant_id, met_on, 3, NULL FROM mentoring WHERE met_on <= $as_of::DATE)
SELECT p.person, (($as_of::DATE - a.d) // $horizon::INTEGER)::INTEGER AS j,
       count(*) FILTER (WHERE kind = 0)::INTEGER AS in_person, count(*) FILTER (WHERE kind = 1)::INTEGER AS online,
       count(*) FILTER (WHERE kind = 2)::INTEGER AS checkins, count(*) FILTER (WHERE kind = 3)::INTEGER AS mentoring,
       coalesce(arg_max(used, a.d) FILTER (WHERE kind = 2), false) AS used_last,
       min($as_of::DATE - a.d)::INTEGER AS last_ago, max($as_of::DATE - a.d)::INTEGER AS first_ago
FROM activity a JOIN p USING (participant_id)
GROUP BY ALL
"""


def outreach_people(store: Store, filters: ParticipantFilter, as_of: dt.date) -> pd.DataFrame:
    """Participants of the filters enrolled by `as_of`, sorted by id (person = 0, 1, ...):
    program, site, enrolled_ago, exited_ago (None: no exit recorded by as_of), dropped_out."""
    where, params = participant_where(filters, "p")
    frame = store.categorical_df(_PEOPLE.format(where=where), {**params, "as_of": as_of})
    frame["participant_id"] = frame.participant_id.astype(str)
    return frame


def outreach_activity(store: Store, filters: ParticipantFilter, as_of: dt.date, horizon: int) -> pd.DataFrame:
    """Per person (as outreach_people numbers them) and bucket j: in_person, online, checkins,
    mentoring (counts), used_last (the bucket's last check-in reported use), last_ago and
    first_ago (days before as_of of its latest and earliest activity). Unordered."""
    where, params = participant_where(filters, "p")
    return store.categorical_df(_ACTIVITY.format(where=where, online=ONLINE_MEETING_SQL),
                                {**params, "as_of": as_of, "horizon": int(horizon)})
