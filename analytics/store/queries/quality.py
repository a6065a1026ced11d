"""The Data page's checks (analytics.analyses.quality) as SQL: filled values per column,
participants without check-ins, and the last activity per program."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.filters import ParticipantFilter, participant_where
from analytics.store.schema import TABLES

__all__ = ["checkin_coverage", "filled_values", "last_activity_by_program", "participants_without_checkins"]


def filled_values(store: Store, filters: ParticipantFilter, table: str) -> tuple[int, dict[str, int]]:
    """Rows of import table `table` for participants matching the filters, and per column of
    the import format the rows where it is filled (not NULL)."""
    columns = [c.name for c in TABLES[table].columns]  # identifiers from the format declaration only
    where, params = participant_where(filters, "p")
    alias = "p" if table == "participants" else "t"
    source = (f"participants p WHERE {where}" if table == "participants" else
              f"{table} t JOIN participants p USING (participant_id) WHERE {where}")
    counts = ", ".join(f'count({alias}.{c}) AS "{c}"' for c in columns)
    got = store.df(f"SELECT count(*) AS __rows, {counts} FROM {source}", params).iloc[0]
    return int(got["__rows"]), {c: int(got[c]) for c in columns}


_WITHOUT = """
SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on, p.exit_reason,
       ($cutoff::DATE - p.enrolled_on)::INTEGER AS days_enrolled
FROM participants p
WHERE {where} AND p.enrolled_on <= $cutoff::DATE
  AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.participant_id = p.participant_id
                  AND c.checked_in_on <= $cutoff::DATE)
ORDER BY p.program, p.site, p.enrolled_on, p.participant_id"""


def participants_without_checkins(store: Store, filters: ParticipantFilter, cutoff: dt.date) -> pd.DataFrame:
    """Participants enrolled on or before the cutoff with no check-in on or before it:
    participant_id, program, site, enrolled_on, exited_on, exit_reason, days_enrolled."""
    where, params = participant_where(filters, "p")
    return store.df(_WITHOUT.format(where=where), {**params, "cutoff": cutoff})


_COVERAGE = """
WITH p AS (SELECT p.participant_id, p.program FROM participants p
           WHERE {where} AND p.enrolled_on <= $cutoff::DATE),
c AS (SELECT DISTINCT participant_id FROM checkins WHERE checked_in_on <= $cutoff::DATE)
SELECT p.program, count(*)::INTEGER AS participants,
       count(*) FILTER (WHERE c.participant_id IS NULL)::INTEGER AS without_checkins,
       count(*) FILTER (WHERE c.participant_id IS NULL) / count(*) AS share_without
FROM p LEFT JOIN c USING (participant_id)
GROUP BY p.program ORDER BY p.program"""


def checkin_coverage(store: Store, filters: ParticipantFilter, cutoff: dt.date) -> pd.DataFrame:
    """Per program: participants (enrolled on or before the cutoff), without_checkins,
    share_without."""
    where, params = participant_where(filters, "p")
    return store.df(_COVERAGE.format(where=where), {**params, "cutoff": cutoff})


_LAST = """
WITH p AS (SELECT p.participant_id, p.program, p.enrolled_on FROM participants p WHERE {where}),
a AS (SELECT participant_id, max(attended_on) AS d FROM attendance GROUP BY 1),
c AS (SELECT participant_id, max(checked_in_on) AS d FROM checkins GROUP BY 1),
m AS (SELECT participant_id, max(met_on) AS d FROM mentoring GROUP BY 1)
SELECT p.program, count(*)::INTEGER AS participants, max(p.enrolled_on) AS last_enrollment,
       max(a.d) AS last_attendance, max(c.d) AS last_checkin, max(m.d) AS last_mentoring
FROM p LEFT JOIN a USING (participant_id) LEFT JOIN c USING (participant_id) LEFT JOIN m USING (participant_id)
GROUP BY p.program ORDER BY p.program"""


def last_activity_by_program(store: Store, filters: ParticipantFilter) -> pd.DataFrame:
    """Per program: participants, last_enrollment, last_attendance, last_checkin,
    last_mentoring (NULL when none)."""
    where, params = participant_where(filters, "p")
    return store.df(_LAST.format(where=where), params)
