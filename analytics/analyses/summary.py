"""What the store holds, and readable text for import results.

The home page, `python -m analytics summary` and the import command all print
from here, so they always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analytics.access.roles import scoped_sites
from analytics.ingest.importer import ImportResult
from analytics.store.connection import Store
from analytics.store.queries import summary as queries


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
    """Counts per table, date range, programs and the last import, in a few queries; of the
    acting account's sites only for a site-scoped one."""
    sites = scoped_sites(())
    first, last = queries.date_range(store, sites)
    return StoreSummary(store.path, queries.table_counts(store, sites), first, last, queries.programs(store, sites),
                        queries.last_import(store), queries.import_sources(store) == {"sample"})


ROW_COUNTS = ("rows_read", "rows_new", "rows_updated", "rows_unchanged")


def import_history(store: Store) -> pd.DataFrame:
    """One row per imported file, newest batch first. A file's row counts cover every site, so a
    site-scoped account gets the files without them."""
    history = queries.import_history(store)
    return history.drop(columns=list(ROW_COUNTS)) if scoped_sites(()) else history


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
