"""What the store holds (analytics.analyses.summary) as SQL: rows per table, the date
range, programs, and the import history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from analytics.store.connection import Store
from analytics.store.queries.filters import in_sites
from analytics.store.schema import ACTIVITY_TABLES, TABLES

__all__ = ["date_range", "has_user_data", "import_history", "import_sources", "last_import", "programs",
           "table_counts"]


def table_counts(store: Store, sites: Sequence[str] = ()) -> dict[str, int]:
    """Rows per import table (of the participants at `sites`; empty: all), in the import format's order."""
    counts = {}
    for name in TABLES:
        rows, params = in_sites(name, sites)
        counts[name] = int(store.scalar(f"SELECT count(*) FROM {rows}", params or None))
    return counts


def date_range(store: Store, sites: Sequence[str] = ()) -> tuple[dt.date | None, dt.date | None]:
    """The earliest enrollment or activity, and the latest enrollment, exit or activity (of the
    participants at `sites`; empty: all)."""
    people, params = in_sites("participants", sites)
    dates = " UNION ALL ".join(
        [f"SELECT min({t.date_column}) AS lo, max({t.date_column}) AS hi FROM {in_sites(t.name, sites)[0]}"
         for t in ACTIVITY_TABLES]
        + [f"SELECT min(enrolled_on), max(greatest(enrolled_on, coalesce(exited_on, enrolled_on))) FROM {people}"])
    first, last = store.rows(f"SELECT min(lo), max(hi) FROM ({dates})", params or None)[0]
    return first, last


def programs(store: Store, sites: Sequence[str] = ()) -> pd.DataFrame:
    """Per program: sites, participants, without_exit (no exit recorded), of the participants at
    `sites` (empty: all)."""
    people, params = in_sites("participants", sites)
    return store.df(f"""
        SELECT program, count(DISTINCT site) AS sites, count(*) AS participants,
               count(*) FILTER (WHERE exited_on IS NULL) AS without_exit
        FROM {people} GROUP BY program ORDER BY program""", params or None)


def last_import(store: Store) -> dict | None:
    """The latest batch: batch_id, imported_at, source, files (names, comma-separated)."""
    row = store.rows("""
        SELECT b.batch_id, b.imported_at, b.source, string_agg(f.file_name, ', ' ORDER BY f.file_name)
        FROM import_batches b LEFT JOIN import_files f USING (batch_id)
        GROUP BY ALL ORDER BY b.batch_id DESC LIMIT 1""")
    if not row:
        return None
    batch_id, at, source, files = row[0]
    return {"batch_id": batch_id, "imported_at": at, "source": source, "files": files}


def import_sources(store: Store) -> set[str]:
    """Where the batches came from ('sample', 'user', ...)."""
    return {s for (s,) in store.rows("SELECT DISTINCT source FROM import_batches")}


def has_user_data(store: Store) -> bool:
    """True once a batch other than the bundled synthetic sample has been imported."""
    return bool(store.scalar("SELECT count(*) FROM import_batches WHERE source IS DISTINCT FROM 'sample'"))


def import_history(store: Store) -> pd.DataFrame:
    """One row per imported file, newest batch first."""
    return store.df("""
        SELECT b.batch_id, b.imported_at, b.source, f.file_name, f.table_name, f.rows_read,
               f.rows_new, f.rows_updated, f.rows_unchanged, f.sha256
        FROM import_batches b JOIN import_files f USING (batch_id)
        ORDER BY b.batch_id DESC, f.file_name""")
