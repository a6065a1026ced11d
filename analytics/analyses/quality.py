"""Data page: what is missing or stale in the store, and what was imported when.

Missing values per column, participants without check-ins, last activity per program,
and the import history (``analytics.analyses.summary.import_history``, re-exported here, not
duplicated). Every function takes the participant `Filters`; activity rows count when
their participant matches them. Counting is SQL in DuckDB with bound parameters; only
the small result tables reach pandas.
"""

from __future__ import annotations

import pandas as pd

from analytics.access.roles import DATA_QUALITY, PARTICIPANT_LEVEL, requires
from analytics.outcomes.filters import Filters
from analytics.store.schema import TABLES
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store
from analytics.analyses.summary import import_history

__all__ = ["checkin_coverage", "import_history", "last_activity_by_program", "missing_values",
           "participants_without_checkins"]


@requires(DATA_QUALITY)
def missing_values(store: Store, filters: Filters = Filters()) -> pd.DataFrame:
    """Missing (blank) values per column of each import table.

    One row per (table, column) in the import format's order: table, column, required
    (required columns can never be blank; they are listed for completeness), rows (rows of
    the table for participants matching the filters), missing, share_missing (NaN when
    the table has no rows). For participants, a blank `sobriety_start` means "same as
    enrollment" and a blank `exited_on` / `exit_reason` means "no exit recorded": blank is
    not necessarily an error there.
    """
    where, params = filters.where("p")
    parts = []
    for name, table in TABLES.items():
        alias = "p" if name == "participants" else "t"
        source = (f"participants p WHERE {where}" if name == "participants" else
                  f"{name} t JOIN participants p USING (participant_id) WHERE {where}")
        # identifiers come from the import format declaration, never from user input
        cols = ", ".join(f"count({alias}.{c.name}) AS \"{c.name}\"" for c in table.columns)
        parts.append((name, table, f"SELECT count(*) AS __rows, {cols} FROM {source}"))
    rows = []
    for name, table, sql in parts:
        got = store.df(sql, params).iloc[0]
        total = int(got["__rows"])
        for col in table.columns:
            missing = total - int(got[col.name])
            rows.append({"table": name, "column": col.name, "required": col.required, "rows": total,
                         "missing": missing, "share_missing": missing / total if total else float("nan")})
    return pd.DataFrame(rows)


_WITHOUT = """
SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on, p.exit_reason,
       ($cutoff::DATE - p.enrolled_on)::INTEGER AS days_enrolled
FROM participants p
WHERE {where} AND p.enrolled_on <= $cutoff::DATE
  AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.participant_id = p.participant_id
                  AND c.checked_in_on <= $cutoff::DATE)
ORDER BY p.program, p.site, p.enrolled_on, p.participant_id"""


@requires(PARTICIPANT_LEVEL)
def participants_without_checkins(store: Store, filters: Filters = Filters(),
                                  settings: OutcomeSettings = OutcomeSettings()) -> pd.DataFrame:
    """Participants (matching the filters, enrolled on or before the cutoff) with no check-in
    on or before the cutoff: participant_id, program, site, enrolled_on, exited_on,
    exit_reason, days_enrolled (to the cutoff). They have no sobriety follow-up (see
    analytics.outcomes.definitions): the survival page leaves them out and counts them."""
    where, params = filters.where("p")
    frame = store.df(_WITHOUT.format(where=where), {**params, "cutoff": resolve_cutoff(store, settings)})
    for col in ("enrolled_on", "exited_on"):
        frame[col] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in frame[col]]
    return frame


@requires(DATA_QUALITY)
def checkin_coverage(store: Store, filters: Filters = Filters(),
                     settings: OutcomeSettings = OutcomeSettings()) -> pd.DataFrame:
    """Per program: participants (enrolled on or before the cutoff), without_checkins (no
    check-in on or before the cutoff) and share_without (without_checkins / participants).
    The same participants as participants_without_checkins."""
    where, params = filters.where("p")
    return store.df(f"""
        WITH p AS (SELECT p.participant_id, p.program FROM participants p
                   WHERE {where} AND p.enrolled_on <= $cutoff::DATE),
        c AS (SELECT DISTINCT participant_id FROM checkins WHERE checked_in_on <= $cutoff::DATE)
        SELECT p.program, count(*)::INTEGER AS participants,
               count(*) FILTER (WHERE c.participant_id IS NULL)::INTEGER AS without_checkins,
               count(*) FILTER (WHERE c.participant_id IS NULL) / count(*) AS share_without
        FROM p LEFT JOIN c USING (participant_id)
        GROUP BY p.program ORDER BY p.program""",
                    {**params, "cutoff": resolve_cutoff(store, settings)})


_LAST = """
WITH p AS (SELECT p.participant_id, p.program, p.enrolled_on FROM participants p WHERE {where}),
a AS (SELECT participant_id, max(attended_on) AS d FROM attendance GROUP BY 1),
c AS (SELECT participant_id, max(checked_in_on) AS d FROM checkins GROUP BY 1),
m AS (SELECT participant_id, max(met_on) AS d FROM mentoring GROUP BY 1)
SELECT p.program, count(*)::INTEGER AS participants, max(p.enrolled_on) AS last_enrollment,
       max(a.d) AS last_attendance, max(c.d) AS last_checkin, max(m.d) AS last_mentoring
FROM p LEFT JOIN a USING (participant_id) LEFT JOIN c USING (participant_id) LEFT JOIN m USING (participant_id)
GROUP BY p.program ORDER BY p.program"""


@requires(DATA_QUALITY)
def last_activity_by_program(store: Store, filters: Filters = Filters()) -> pd.DataFrame:
    """Per program: participants, last_enrollment, last_attendance, last_checkin,
    last_mentoring (None when the program has none), last_activity (latest of the three
    activity dates) and days_behind (days from last_activity to the latest date in the
    whole store: a program whose data stops early shows a large number, a sign of a missed
    import)."""
    where, params = filters.where("p")
    frame = store.df(_LAST.format(where=where), params)
    cols = ["last_enrollment", "last_attendance", "last_checkin", "last_mentoring"]
    for col in cols:
        frame[col] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in frame[col]]
    frame["last_activity"] = [max([d for d in r if d is not None], default=None)
                              for r in frame[cols[1:]].itertuples(index=False)]
    latest = resolve_cutoff(store, OutcomeSettings())
    frame["days_behind"] = pd.array([None if d is None else (latest - d).days for d in frame.last_activity],
                                    dtype="Int64")
    return frame
