"""Staging the files, and writing a checked batch: insert new rows, update changed ones,
count what happened per file, and record the batch in the import history.

Files are staged as temp tables outside the store's transaction (so nothing of them can
land by accident); only write_batch, inside the transaction, touches the store's tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analytics.ingest.files import SourceFile
from analytics.ingest.problems import MAX_EXAMPLES, Problem, file_problem, more_problem, short
from analytics.ingest.rules import TYPE_HINTS
from analytics.store.connection import Session
from analytics.store.queries import ingest as q
from analytics.store.schema import TABLES, Table


@dataclass
class TableCounts:
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class Written:
    """What write_batch did: counts per table, changed participants, the batch logged."""

    counts: dict[str, TableCounts] = field(default_factory=dict)
    updated_participants: list[tuple[str, list[str]]] = field(default_factory=list)
    batch_id: int | None = None


def stage_file(db: Session, src: SourceFile, index: int) -> list[Problem]:
    """Read one file into a temp table with declared types; report what DuckDB rejected.

    DuckDB drops a row whose value it cannot parse, which would hide that row's other
    problems. So a file with such values is read again with those columns as text; the
    view then parses them and a rule reports each failure alongside the row's other
    problems. Clean files (the bulk case) are read once.
    """
    rejects = _read(db, src, index)
    cast_columns = {r[1] for r in rejects if r[2] == "CAST"}
    if cast_columns:
        src.text_columns = cast_columns
        rejects = _read(db, src, index)
    if src.rows == 0 and not rejects:
        return [file_problem(src.name, "the file has a header but no data rows")]
    return reject_problems(src, rejects)  # then trailing_field_problems, once the lines are counted


def _read(db: Session, src: SourceFile, index: int) -> list[tuple]:
    assert src.table is not None and src.csv_path is not None
    src.staged = f"staged_{index}"
    src.rows, rejects = q.stage_csv(db, src.staged, str(src.csv_path), src.table, src.columns, src.text_columns)
    src.rejected_lines = sorted({int(r[0]) for r in rejects})
    return rejects


def trailing_field_problems(db: Session, src: SourceFile, count: int | None = None) -> list[Problem]:
    """Rows with more fields than the header, where the extra fields are empty.

    DuckDB drops empty fields beyond the header without a word ("a,b,c," reads as a,b,c),
    so a stray comma in a row whose last value is empty would shift values into the wrong
    columns unnoticed. The fingerprint pass counts such rows when the file has no quotes
    (`count`), else one pass of DuckDB over the raw lines does; only a file that has them
    pays for numbering its lines.
    """
    path, width = str(src.csv_path), len(src.columns)
    if count is None:
        count = q.count_long_lines(db, path, width)
    if not count:
        return []
    lines = q.long_line_numbers(db, path, width, MAX_EXAMPLES)
    problems = [Problem(src.name, n, None, None, "row has more fields than the header (a stray comma?); "
                        "check delimiters and quotes") for n in lines]
    if count > len(lines):
        problems.append(more_problem(src.name, None, count - len(lines), "rows with more fields than the header"))
    return problems


def reject_problems(src: SourceFile, rejects: list[tuple]) -> list[Problem]:
    """Turn DuckDB's reject rows into readable problems, capped per kind."""
    problems: list[Problem] = []
    seen: dict[tuple, int] = {}
    for line, column, kind, csv_line, message in rejects:
        label = (column, kind)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > MAX_EXAMPLES:
            continue
        col = src.table.column(column) if column in src.table.column_names else None
        if kind == "CAST" and col is not None:
            problems.append(Problem(src.name, int(line), column, _cast_value(message),
                                    TYPE_HINTS.get(col.type, message)))
        elif kind in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
            problems.append(Problem(src.name, int(line), None, short(csv_line),
                                    f"row has the wrong number of fields ({message}); check "
                                    "delimiters and quotes"))
        elif kind == "INVALID UNICODE":
            problems.append(Problem(src.name, int(line), None, None,
                                    "row is not valid UTF-8: save the file as 'CSV UTF-8'"))
        else:
            problems.append(Problem(src.name, int(line), column, short(csv_line), message))
    for (column, kind), count in seen.items():
        if count > MAX_EXAMPLES:
            problems.append(more_problem(src.name, column, count - MAX_EXAMPLES, "rows with the same problem"))
    return problems


def _cast_value(message: str) -> str | None:
    found = re.search(r'Could not convert string "(.*)" to', message)
    return found.group(1) if found else None


def batch_view(db: Session, table: Table, files: list[SourceFile]) -> str:
    """A view over the batch's staged rows of one table (see queries.ingest.batch_view)."""
    return q.batch_view(db, table, [(src.staged, src.text_columns) for src in files])


def group_by_table(files: list[SourceFile]) -> dict[str, list[SourceFile]]:
    """The files of each table, in the format's table order."""
    grouped: dict[str, list[SourceFile]] = {}
    for table in TABLES.values():
        members = [f for f in files if f.table is table]
        if members:
            grouped[table.name] = members
    return grouped


def write_batch(db: Session, files: list[SourceFile], source: str) -> Written:
    """Insert and update every table; log the batch only if something changed (re-importing
    unchanged files leaves the history as it was)."""
    written = Written()
    per_file: dict[str, TableCounts] = {}
    for table_name, group in group_by_table(files).items():
        table = TABLES[table_name]
        matched, updated = q.upsert(db, table, batch_view(db, table, group), len(group),
                                    sum(src.rows for src in group))
        total = TableCounts()
        for src, (n_matched, n_updated) in zip(group, matched):
            c = TableCounts(src.rows, src.rows - n_matched, n_updated, n_matched - n_updated)
            per_file[src.name] = c
            total.rows += c.rows
            total.new += c.new
            total.updated += c.updated
            total.unchanged += c.unchanged
        written.counts[table_name] = total
        written.updated_participants += updated
    if any(c.new or c.updated for c in written.counts.values()):
        written.batch_id = q.log_batch(db, source, [
            (src.name, src.table.name, src.sha256, per_file[src.name].rows, per_file[src.name].new,
             per_file[src.name].updated, per_file[src.name].unchanged) for src in files])
    return written
