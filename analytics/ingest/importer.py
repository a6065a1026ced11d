"""Validated import of CSV and XLSX files in the import format (docs/import-format.md).

Why it is shaped this way:
- Everything is checked before anything is written, and every problem is
  reported at once (file, row, column, value, what is wrong), so a data
  manager fixes a file in one pass.
- DuckDB reads each file with declared column types (no type guessing);
  values it cannot parse land in its reject table with their line numbers.
  The remaining rules run as set-based SQL over the staged rows: no Python
  loop over rows, so 10 million rows import in seconds.
- The whole batch is one transaction: it lands completely or not at all, even
  if the process is killed half-way.

The rooms: files.py (finding, sniffing, bounding and reading files), rules.py (what
every row must meet), load.py (staging and writing), problems.py (the report); their SQL
is in analytics/store/queries/ingest.py. This module runs them in order.

Row numbers are spreadsheet rows: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from analytics.access import audit
from analytics.access.roles import IMPORT, requires
from analytics.ingest.files import SourceFile, collect_files, fingerprint, inspect_file, nul_problem, stageable
from analytics.ingest.load import (
    TableCounts,
    batch_view,
    group_by_table,
    stage_file,
    trailing_field_problems,
    write_batch,
)
from analytics.ingest.problems import MAX_EXAMPLES, Problem, problems_csv
from analytics.ingest.rules import activity_rules, duplicate_problems, enrollment_moves, row_rules, run_rules
from analytics.store.connection import Session, Store
from analytics.store.queries import ingest as q
from analytics.store.schema import ACTIVITY_TABLES, ASSESSMENTS, PARTICIPANTS

__all__ = ["ImportResult", "MAX_EXAMPLES", "Problem", "SourceFile", "TableCounts", "import_files",
           "problems_csv"]

Progress = Callable[[str], None]


@dataclass
class ImportResult:
    """What an import did, or would do (dry run), or why it refused."""

    files: list[SourceFile]
    problems: list[Problem]
    counts: dict[str, TableCounts] = field(default_factory=dict)
    updated_participants: list[tuple[str, list[str]]] = field(default_factory=list)
    batch_id: int | None = None
    dry_run: bool = False
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return any(c.new or c.updated for c in self.counts.values())


@requires(IMPORT)
def import_files(store: Store, paths: Iterable[str | Path], *, dry_run: bool = False,
                 today: dt.date | None = None, source: str = "user",
                 progress: Progress | None = None, user: str | None = None) -> ImportResult:
    """Validate `paths` (files or folders) and, if all is well, load them in one transaction.

    On any problem nothing is written and the result lists every problem found.
    With dry_run the import runs to the end and is then rolled back.
    """
    if store.read_only and not dry_run:
        raise ValueError("the store is open read-only: only a dry run is possible")
    say = progress or (lambda _msg: None)
    today = today or dt.date.today()
    found, skipped, problems = collect_files(list(paths))
    sources = [SourceFile(p) for p in found]
    result = ImportResult(files=sources, problems=problems, dry_run=dry_run, skipped=skipped)
    db = store.session()
    readable = stage_all(db, sources, problems, say)
    with db.transaction(commit=not dry_run):
        problems += check_batch(db, readable, today, say)
        if problems:
            db.discard()  # nothing of this batch may land
            problems.sort(key=lambda p: (p.file, p.row or 0))
            return result
        say("counting changes (dry run: nothing is written)" if dry_run else "writing")
        written = write_batch(db, readable, source)
        result.counts, result.updated_participants = written.counts, written.updated_participants
        result.batch_id = written.batch_id
        audit.record(db, "import", f"batch {written.batch_id}" if written.batch_id else "no change",
                     user=user, source=source, files=[src.name for src in readable], counts=result.counts)
    if not dry_run and result.changed:
        store.checkpoint()
    return result


def stage_all(db: Session, sources: list[SourceFile], problems: list[Problem], say: Progress) -> list[SourceFile]:
    """Inspect and stage every file; hash each file (and look for NUL bytes in it) in a thread
    meanwhile. Returns the files whose rows were staged; problems are appended."""
    readable = []
    with tempfile.TemporaryDirectory(prefix="outcomes-import-") as tmp, \
            ThreadPoolExecutor(max_workers=1) as pool:
        prints = [pool.submit(fingerprint, src.path) for src in sources]
        for index, src in enumerate(sources):
            say(f"checking {src.name}")
            found_here = inspect_file(src, Path(tmp))
            problems += found_here
            if stageable(src, found_here):
                say(f"reading {src.name}")
                problems += stage_file(db, src, index)  # temp tables, outside the store
                readable.append(src)
        for src, done in zip(sources, prints):
            if src in readable and (src.rows or src.rejected_lines):
                # a CSV is read as is, so its fingerprint counted the lines with trailing commas
                known = done.result().long_lines(len(src.columns)) if src.csv_path == src.path else None
                problems += trailing_field_problems(db, src, known)
            print_ = done.result()
            src.sha256 = print_.sha256
            if print_.nul_line is not None:
                problems.append(nul_problem(src, print_.nul_line))
    return readable


def check_batch(db: Session, files: list[SourceFile], today: dt.date, say: Progress) -> list[Problem]:
    """Every row-level and cross-table rule, over all staged files."""
    problems: list[Problem] = []
    by_table = group_by_table(files)
    has_participants = PARTICIPANTS.name in by_table
    if has_participants:
        group = by_table[PARTICIPANTS.name]
        view = batch_view(db, PARTICIPANTS, group)
        problems += run_rules(db, view, PARTICIPANTS, row_rules(PARTICIPANTS, today), group, today)
        problems += duplicate_problems(db, view, PARTICIPANTS.key, group)
        problems += enrollment_moves(db, group)
    q.make_known_participants(db, has_participants)
    for table in (*ACTIVITY_TABLES, ASSESSMENTS):
        group = by_table.get(table.name)
        if not group:
            continue
        say(f"checking rows of {table.name}")
        view = batch_view(db, table, group)
        problems += run_rules(db, q.with_known_participants(view), table,
                              row_rules(table, today) + activity_rules(table), group, today)
        problems += duplicate_problems(db, view, table.key, group)
    return problems
