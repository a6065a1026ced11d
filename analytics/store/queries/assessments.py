"""SQL of the recovery-capital analyses (issue 14): follow-up schedule, change, trajectories.

Every value is a bound parameter; the BARC-10 total is the recorded total or, when only
the items were given, their sum (the importer made sure the two agree when both are there).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.queries.filters import ParticipantFilter, participant_where
from analytics.store.connection import Store
from analytics.store.schema import BARC10_ITEMS

_TOTAL = f"coalesce(a.total, {' + '.join('a.' + c for c in BARC10_ITEMS)})"

_SCHEDULE = f"""
WITH p AS (
    SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on, p.exit_reason,
           strftime(p.enrolled_on, '%Y') || '-Q' || quarter(p.enrolled_on) AS cohort_quarter
    FROM participants p WHERE {{where}} AND p.enrolled_on <= $cutoff::DATE
),
a AS (
    SELECT a.participant_id, a.assessed_on, {_TOTAL} AS total
    FROM assessments a JOIN p USING (participant_id)
    WHERE a.instrument = $instrument AND a.assessed_on <= $cutoff::DATE
),
base AS (
    SELECT p.participant_id, arg_min(a.assessed_on, a.assessed_on) AS baseline_on,
           arg_min(a.total, a.assessed_on) AS baseline_total
    FROM p JOIN a USING (participant_id)
    WHERE a.assessed_on BETWEEN p.enrolled_on - CAST($before AS INTEGER) AND p.enrolled_on + CAST($after AS INTEGER)
    GROUP BY p.participant_id
),
due AS (
    SELECT b.*, f.k, f.days, b.baseline_on + CAST(f.days AS INTEGER) AS due_on
    FROM base b, (SELECT unnest(range(1, len($days::INTEGER[]) + 1)) AS k,
                         unnest($days::INTEGER[]) AS days) f
    WHERE b.baseline_on + CAST(f.days - $window AS INTEGER) <= $cutoff::DATE + CAST($soon AS INTEGER)
),
hit AS (
    SELECT d.participant_id, d.k, arg_min(a.assessed_on, abs(a.assessed_on - d.due_on)) AS done_on,
           arg_min(a.total, abs(a.assessed_on - d.due_on)) AS followup_total
    FROM due d JOIN a ON a.participant_id = d.participant_id
     AND a.assessed_on BETWEEN d.due_on - CAST($window AS INTEGER) AND d.due_on + CAST($window AS INTEGER)
    GROUP BY d.participant_id, d.k
)
SELECT p.participant_id, p.program, p.site, p.cohort_quarter, p.enrolled_on, p.exited_on, p.exit_reason,
       d.baseline_on, d.baseline_total, d.k, d.days, d.due_on,
       d.due_on - CAST($window AS INTEGER) AS window_from, d.due_on + CAST($window AS INTEGER) AS window_to,
       h.done_on, h.followup_total,
       (p.exit_reason = 'deceased' AND p.exited_on < d.due_on - CAST($window AS INTEGER)) IS TRUE AS deceased_before,
       (d.due_on + CAST($window AS INTEGER) <= $cutoff::DATE AND NOT deceased_before) IS TRUE AS due,
       (due AND h.done_on IS NOT NULL) AS done
FROM p LEFT JOIN due d USING (participant_id)
LEFT JOIN hit h ON h.participant_id = d.participant_id AND h.k = d.k
ORDER BY p.participant_id, d.k
"""


def schedule(store: Store, filters: ParticipantFilter, *, instrument: str, cutoff: dt.date, before: int, after: int,
             days: list[int], window: int, soon: int) -> pd.DataFrame:
    """One row per participant and follow-up whose window opens by cutoff + soon (k null for a
    participant without baseline): baseline, due day, window, the assessment that did it."""
    where, params = participant_where(filters, "p")
    return store.df(_SCHEDULE.format(where=where), {
        **params, "instrument": instrument, "cutoff": cutoff, "before": before, "after": after,
        "days": days, "window": window, "soon": soon})


def engagement_between(store: Store, pairs: pd.DataFrame) -> pd.DataFrame:
    """Meetings, check-ins and mentoring sessions of each participant after `start` and up to
    `stop` (columns participant_id, start, stop; one row per participant)."""
    cur = store.read()
    ids, starts, stops = (pairs.participant_id.tolist(), pd.to_datetime(pairs.start).dt.date.tolist(),
                          pd.to_datetime(pairs.stop).dt.date.tolist())
    return cur.df("""
        WITH q AS (SELECT unnest($ids::VARCHAR[]) AS participant_id, unnest($starts::DATE[]) AS start,
                          unnest($stops::DATE[]) AS stop),
        m AS (SELECT q.participant_id, count(x.attended_on) AS n FROM q LEFT JOIN attendance x
              ON x.participant_id = q.participant_id AND x.attended_on > q.start AND x.attended_on <= q.stop
              GROUP BY q.participant_id),
        c AS (SELECT q.participant_id, count(x.checked_in_on) AS n FROM q LEFT JOIN checkins x
              ON x.participant_id = q.participant_id AND x.checked_in_on > q.start AND x.checked_in_on <= q.stop
              GROUP BY q.participant_id),
        s AS (SELECT q.participant_id, count(x.met_on) AS n FROM q LEFT JOIN mentoring x
              ON x.participant_id = q.participant_id AND x.met_on > q.start AND x.met_on <= q.stop
              GROUP BY q.participant_id)
        SELECT q.participant_id, q.start, q.stop, m.n AS meetings, c.n AS checkins, s.n AS mentoring
        FROM q JOIN m USING (participant_id) JOIN c USING (participant_id) JOIN s USING (participant_id)
        ORDER BY q.participant_id""", {"ids": ids, "starts": starts, "stops": stops})


def trajectories(store: Store, filters: ParticipantFilter, *, instrument: str, cutoff: dt.date, before: int,
                 month_days: float) -> pd.DataFrame:
    """Every assessment of participants in the filters (from `before` days before enrollment to
    the cutoff): participant, program, months since enrollment, total."""
    where, params = participant_where(filters, "p")
    return store.df(f"""
        SELECT a.participant_id, p.program, a.assessed_on,
               (a.assessed_on - p.enrolled_on) / $month_days AS months, {_TOTAL} AS total
        FROM assessments a JOIN participants p USING (participant_id)
        WHERE {where} AND p.enrolled_on <= $cutoff::DATE AND a.instrument = $instrument
          AND a.assessed_on <= $cutoff::DATE AND a.assessed_on >= p.enrolled_on - CAST($before AS INTEGER)
        ORDER BY a.participant_id, a.assessed_on""",
                    {**params, "instrument": instrument, "cutoff": cutoff, "before": before,
                     "month_days": month_days})
