"""Data page: what is missing or stale in the store, and what was imported when.

Missing values per column, participants without check-ins, last activity per program,
and the import history (``analytics.analyses.summary.import_history``, re-exported here, not
duplicated). Every function takes the participant `Filters`; activity rows count when
their participant matches them. Counting is SQL in DuckDB with bound parameters
(analytics.store.queries.quality); only the small result tables reach pandas.
"""

from __future__ import annotations

import pandas as pd

from analytics.access.roles import DATA_QUALITY, PARTICIPANT_LEVEL, requires
from analytics.outcomes.filters import Filters
from analytics.store.schema import TABLES
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store
from analytics.store.queries import quality as queries
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
    rows = []
    for name, table in TABLES.items():
        total, filled = queries.filled_values(store, filters, name)
        for col in table.columns:
            missing = total - filled[col.name]
            rows.append({"table": name, "column": col.name, "required": col.required, "rows": total,
                         "missing": missing, "share_missing": missing / total if total else float("nan")})
    return pd.DataFrame(rows)


@requires(PARTICIPANT_LEVEL)
def participants_without_checkins(store: Store, filters: Filters = Filters(),
                                  settings: OutcomeSettings = OutcomeSettings()) -> pd.DataFrame:
    """Participants (matching the filters, enrolled on or before the cutoff) with no check-in
    on or before the cutoff: participant_id, program, site, enrolled_on, exited_on,
    exit_reason, days_enrolled (to the cutoff). They have no sobriety follow-up (see
    analytics.outcomes.definitions): the survival page leaves them out and counts them."""
    frame = queries.participants_without_checkins(store, filters, resolve_cutoff(store, settings))
    for col in ("enrolled_on", "exited_on"):
        frame[col] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in frame[col]]
    return frame


@requires(DATA_QUALITY)
def checkin_coverage(store: Store, filters: Filters = Filters(),
                     settings: OutcomeSettings = OutcomeSettings()) -> pd.DataFrame:
    """Per program: participants (enrolled on or before the cutoff), without_checkins (no
    check-in on or before the cutoff) and share_without (without_checkins / participants).
    The same participants as participants_without_checkins."""
    return queries.checkin_coverage(store, filters, resolve_cutoff(store, settings))


@requires(DATA_QUALITY)
def last_activity_by_program(store: Store, filters: Filters = Filters()) -> pd.DataFrame:
    """Per program: participants, last_enrollment, last_attendance, last_checkin,
    last_mentoring (None when the program has none), last_activity (latest of the three
    activity dates) and days_behind (days from last_activity to the latest date in the
    whole store: a program whose data stops early shows a large number, a sign of a missed
    import)."""
    frame = queries.last_activity_by_program(store, filters)
    cols = ["last_enrollment", "last_attendance", "last_checkin", "last_mentoring"]
    for col in cols:
        frame[col] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in frame[col]]
    frame["last_activity"] = [max([d for d in r if d is not None], default=None)
                              for r in frame[cols[1:]].itertuples(index=False)]
    latest = resolve_cutoff(store, OutcomeSettings())
    frame["days_behind"] = pd.array([None if d is None else (latest - d).days for d in frame.last_activity],
                                    dtype="Int64")
    return frame
