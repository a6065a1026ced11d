"""What the store holds, and readable text for import results.

The home page, `python -m analytics summary` and the import command all print
from here, so they always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analytics.ingest.importer import ImportResult
from analytics.store.schema import ACTIVITY_TABLES, TABLES
from analytics.store.connection import Store


@dataclass(frozen=True)
class StoreSummary:
    path: Path | None
    counts: dict[str, int]  # rows per import table
    first_date: dt.date | None  # earliest enrollment or activity
    last_date: dt.date | None  # latest enrollment, exit or activity
    programs: pd.DataFrame  # program, sites, participants, active (no exit recorded)
    last_import: dict | None  # batch_id, imported_at, source, files
    sample_only: bool  # every batch so far is the bundled synthetic sample

    @property
    def empty(self) -> bool:
        return self.counts.get("participants", 0) == 0


def store_summary(store: Store) -> StoreSummary:
    """Counts per table, date range, programs and the last import, in a few queries."""
    counts = {name: int(store.scalar(f"SELECT count(*) FROM {name}")) for name in TABLES}
    dates = " UNION ALL ".join(
        [f"SELECT min({t.date_column}) AS lo, max({t.date_column}) AS hi FROM {t.name}" for t in ACTIVITY_TABLES]
        + ["SELECT min(enrolled_on), max(greatest(enrolled_on, coalesce(exited_on, enrolled_on))) FROM participants"])
    first, last = store.rows(f"SELECT min(lo), max(hi) FROM ({dates})")[0]
    programs = store.df("""
        SELECT program, count(DISTINCT site) AS sites, count(*) AS participants,
               count(*) FILTER (WHERE exited_on IS NULL) AS without_exit
        FROM participants GROUP BY program ORDER BY program""")
    last_import = None
    row = store.rows("""
        SELECT b.batch_id, b.imported_at, b.source, string_agg(f.file_name, ', ' ORDER BY f.file_name)
        FROM import_batches b LEFT JOIN import_files f USING (batch_id)
        GROUP BY ALL ORDER BY b.batch_id DESC LIMIT 1""")
    if row:
        batch_id, at, source, files = row[0]
        last_import = {"batch_id": batch_id, "imported_at": at, "source": source, "files": files}
    sources = {s for (s,) in store.rows("SELECT DISTINCT source FROM import_batches")}
    return StoreSummary(store.path, counts, first, last, programs, last_import, sources == {"sample"})


def import_history(store: Store) -> pd.DataFrame:
    """One row per imported file, newest batch first."""
    return store.df("""
        SELECT b.batch_id, b.imported_at, b.source, f.file_name, f.table_name, f.rows_read,
               f.rows_new, f.rows_updated, f.rows_unchanged, f.sha256
        FROM import_batches b JOIN import_files f USING (batch_id)
        ORDER BY b.batch_id DESC, f.file_name""")


def format_summary(s: StoreSummary) -> str:
    lines = [f"store: {s.path or '(in memory)'}"]
    if s.empty:
        return "\n".join(lines + ["the store is empty: import files with `python -m analytics import PATH`"])
    lines += [f"  {name:<13} {n:>12,} rows" for name, n in s.counts.items()]
    lines.append(f"dates: {s.first_date} to {s.last_date}")
    lines.append("programs:")
    for r in s.programs.itertuples():
        lines.append(f"  {r.program}: {r.participants:,} participants at {r.sites} site(s), "
                     f"{r.without_exit:,} without a recorded exit")
    if s.last_import:
        li = s.last_import
        lines.append(f"last import: batch {li['batch_id']} at {li['imported_at']:%Y-%m-%d %H:%M} "
                     f"({li['source']}): {li['files']}")
    return "\n".join(lines)


def format_import(result: ImportResult, path: Path) -> str:
    """The CLI's report of an import: problems, or counts per table."""
    if not result.ok:
        lines = [f"Import refused: {len(result.problems)} problem(s); nothing was written to {path}.",
                 "file | row | column | value | problem"]
        lines += [f"{p.file} | {'' if p.row is None else p.row} | {p.column or ''} | "
                  f"{'' if p.value is None else p.value} | {p.problem}" for p in result.problems]
        return "\n".join(lines)
    head = ("Dry run: nothing was written. This import would change:" if result.dry_run
            else f"Imported batch {result.batch_id} into {path}.")
    lines = [head, f"{'table':<13} {'rows':>10} {'new':>10} {'updated':>10} {'unchanged':>10}"]
    for name, c in result.counts.items():
        lines.append(f"{name:<13} {c.rows:>10,} {c.new:>10,} {c.updated:>10,} {c.unchanged:>10,}")
    if not result.changed:
        lines.append("Nothing changed: every row is already in the store as it is.")
    if result.updated_participants:
        lines.append(f"Updated participants ({len(result.updated_participants)}):")
        lines += [f"  {pid}: {', '.join(cols)}" for pid, cols in result.updated_participants[:50]]
        if len(result.updated_participants) > 50:
            lines.append(f"  ... and {len(result.updated_participants) - 50} more")
    if result.skipped:
        lines.append("Skipped (not .csv/.xlsx): " + ", ".join(p.name for p in result.skipped))
    return "\n".join(lines)
