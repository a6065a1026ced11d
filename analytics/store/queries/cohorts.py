"""The Cohorts page's check-in trends (analytics.analyses.cohorts) as SQL. Cohort
retention is counted by analytics.store.queries.kpis.retention_counts."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_sql, key_columns, secret_params
from analytics.store.queries.filters import ParticipantFilter, participant_where

__all__ = ["COHORT_LABELS", "checkin_trends"]

# The cohort label of participants p per unit (the same as durations' cohort_month / cohort_quarter).
COHORT_LABELS = {"month": "strftime(p.enrolled_on, '%Y-%m')",
                 "quarter": "strftime(p.enrolled_on, '%Y') || '-Q' || quarter(p.enrolled_on)"}

_TRENDS = """
WITH p AS (
    SELECT p.participant_id, p.enrolled_on, {cohort} AS cohort FROM participants p
    WHERE {where} AND p.enrolled_on <= $cutoff::DATE),
sizes AS (SELECT cohort, count(*) AS cohort_n, max(enrolled_on) AS last_enrolled{size_keys} FROM p GROUP BY 1),
per AS (
    SELECT p.cohort, floor((c.checked_in_on - p.enrolled_on) / $month_days)::INTEGER AS month,
           c.participant_id, count(*) AS k, bool_or(c.used) AS used, avg(c.craving) AS craving,
           avg(c.mood) AS mood
    FROM checkins c JOIN p USING (participant_id)
    WHERE c.checked_in_on <= $cutoff::DATE AND c.checked_in_on >= p.enrolled_on
    GROUP BY ALL)
SELECT per.cohort, per.month, any_value(s.cohort_n)::INTEGER AS cohort_n,
       count(*)::INTEGER AS participants, sum(per.k)::INTEGER AS checkins,
       count(*) FILTER (WHERE per.used)::INTEGER AS reported_use,
       count(*) FILTER (WHERE NOT per.used)::INTEGER AS no_use,
       avg(per.used::INTEGER) AS used_share, avg(per.craving) AS craving, avg(per.mood) AS mood,
       count(per.craving)::INTEGER AS craving_n, count(per.mood)::INTEGER AS mood_n,
       $cutoff::DATE - any_value(s.last_enrolled) >= (per.month + 1) * $month_days AS complete{keys}
FROM per JOIN sizes s USING (cohort)
GROUP BY per.cohort, per.month ORDER BY per.cohort, per.month"""


def _trend_keys() -> dict[str, str]:
    """The cell key of each count of people per (cohort, month): one row of ``per`` per participant."""
    def key(when: str | None = None) -> str:
        return cell_key_sql("per.participant_id", when=when)
    return {"cohort_n_key": "any_value(s.cohort_n_key)", "participants_key": key(),
            "reported_use_key": key("per.used"), "no_use_key": key("NOT per.used"),
            "craving_n_key": key("per.craving IS NOT NULL"), "mood_n_key": key("per.mood IS NOT NULL")}


def checkin_trends(store: Store, filters: ParticipantFilter, by: str, cutoff: dt.date,
                   month_days: float, keyed: bool = False) -> pd.DataFrame:
    """Per (enrollment cohort by `by`, month since enrollment of `month_days` days) with a
    check-in on or before the cutoff: cohort, month, cohort_n, participants, checkins,
    reported_use and no_use (participants reporting any use that month, or none), used_share,
    craving, mood (means of each participant's means), craving_n, mood_n, complete (the whole
    cohort enrolled for the whole month by the cutoff). ``keyed``: also the cell key
    ``<count>_key`` of each count of people (cohort_n, participants, reported_use, no_use,
    craving_n, mood_n), for the download's perturbation."""
    if by not in COHORT_LABELS:
        raise ValueError(f"cohorts are by {' or '.join(COHORT_LABELS)}, not {by!r}")
    where, params = participant_where(filters, "p")
    sql = _TRENDS.format(where=where, cohort=COHORT_LABELS[by], keys=key_columns(keyed, **_trend_keys()),
                         size_keys=key_columns(keyed, cohort_n_key=cell_key_sql("participant_id")))
    return store.df(sql, {**params, "cutoff": cutoff, "month_days": month_days,
                          **(secret_params(store) if keyed else {})})
