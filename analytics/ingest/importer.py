"""Validated import of CSV and XLSX files in the import format (version 1).

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

Row numbers are spreadsheet rows: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import datetime as dt
import hashlib
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from analytics.access import audit
from analytics.ingest import assessments as assessment_rules
from analytics.access.roles import IMPORT, requires
from analytics.store.schema import (
    ACTIVITY_TABLES,
    ASSESSMENTS,
    CODE_PATTERN,
    EARLIEST_DATE,
    IDENTIFIER_NAMES,
    PARTICIPANTS,
    TABLES,
    Column,
    Table,
)
from analytics.store.connection import Session, Store

MAX_EXAMPLES = 20  # rows listed per problem; the rest are counted
_FILE_STRIDE = 10**12  # (file, record) -> one sortable BIGINT position
SUFFIXES = {".csv", ".xlsx"}
TYPE_HINTS = {
    "DATE": "not a valid date (expected YYYY-MM-DD, e.g. 2025-03-31)",
    "INTEGER": "not a whole number",
    "BOOLEAN": "not true or false",
}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input; row is None for a whole-file problem."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    problem: str


@dataclass
class TableCounts:
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class SourceFile:
    """One input file and what we learnt about it before reading its rows."""

    path: Path
    table: Table | None = None
    columns: list[str] = field(default_factory=list)  # normalised header, file order
    csv_path: Path | None = None  # the CSV DuckDB reads (a converted copy for XLSX)
    sha256: str = ""
    rows: int = 0
    staged: str | None = None  # temp table holding its rows
    text_columns: set[str] = field(default_factory=set)  # typed columns read as text (bad values)
    rejected_lines: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


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


# ---------------------------------------------------------------- files ---

def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path], list[Problem]]:
    """Expand folders; return (files to import, files skipped in folders, problems)."""
    files: list[Path] = []
    skipped: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.name.startswith((".", "~$")) or not child.is_file():
                    continue
                (files if child.suffix.lower() in SUFFIXES else skipped).append(child)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, None, "no such file or folder"))
    if not files and not problems:
        problems.append(Problem(", ".join(map(str, paths)) or "(none)", None, None, None,
                                "no .csv or .xlsx files to import"))
    return files, skipped, problems


def table_for_name(path: Path) -> Table | None:
    """The table a file name announces: participants*.csv, attendance*.xlsx, ..."""
    stem = re.sub(r"[\s\-]+", "_", path.stem.lower())
    stem = stem.replace("check_ins", "checkins")
    for table in TABLES.values():
        if stem.startswith(table.name) or stem.startswith(table.name.rstrip("s")):
            return table
    return None


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def table_for_header(columns: Sequence[str]) -> Table | None:
    """The table whose required columns a header has (to say what a misnamed file is)."""
    present = set(columns)
    for table in TABLES.values():
        if set(table.required) <= present and len(present - set(table.column_names)) == 0:
            if table.date_column is None or table.date_column in present:
                return table
    return None


def sniff(path: Path) -> tuple[bytes, str | None]:
    """The file's first bytes and, if it is plainly not what its suffix says, why."""
    with path.open("rb") as fh:
        head = fh.read(65536)
    is_zip = head.startswith(b"PK\x03\x04")
    if path.suffix.lower() == ".xlsx":
        return head, None if is_zip else "not an Excel .xlsx workbook (the content is not a workbook)"
    if is_zip:
        return head, "an Excel workbook or zip archive, not CSV text: save it as .xlsx or export CSV"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return head, "an old binary Excel (.xls) file, not CSV text: save it as CSV UTF-8 or .xlsx"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head, "encoded as UTF-16, not UTF-8: save it as 'CSV UTF-8'"
    if head.startswith(b"%PDF"):
        return head, "a PDF document, not CSV text"
    if b"\x00" in head:
        return head, "binary data, not CSV text"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        return head, (f"not UTF-8 text (byte {exc.start + 1} cannot be read as UTF-8; "
                      "probably Windows-1252 or Latin-1): save it as 'CSV UTF-8'")
    return head, None


def read_header(head: bytes) -> list[str]:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    return next(csv.reader([first]), []) if first else []


def xlsx_to_csv(path: Path, workdir: Path) -> Path:
    """Copy the first sheet of a workbook to CSV, so both formats share one checked path.

    Excel date cells become ISO dates; whole-number floats lose their '.0'.
    """
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    while rows and all(v is None or str(v).strip() == "" for v in rows[-1]):
        rows.pop()
    out = workdir / f"{path.stem}.csv"
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerows([_cell(v) for v in row] for row in rows)
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_file(src: SourceFile, workdir: Path) -> list[Problem]:
    """File-level checks: type, encoding, delimiter, header. Fills src.table/columns."""
    name = src.name
    if src.path.suffix.lower() not in SUFFIXES:
        return [Problem(name, None, None, None,
                        f"unsupported file type '{src.path.suffix}': use .csv (UTF-8) or .xlsx")]
    src.table = table_for_name(src.path)
    if src.table is None:
        return [Problem(name, None, None, None, "cannot tell which table this file is for: its name "
                        "must start with participants, attendance, checkins, mentoring or assessments")]
    head, wrong = sniff(src.path)
    if wrong:
        return [Problem(name, None, None, None, f"the file is {wrong}")]
    if src.path.suffix.lower() == ".xlsx":
        try:
            src.csv_path = xlsx_to_csv(src.path, workdir)
        except Exception as exc:  # openpyxl raises many types for broken workbooks
            return [Problem(name, None, None, None, f"cannot read the workbook: {exc}")]
        head = src.csv_path.read_bytes()[:65536]
    else:
        src.csv_path = src.path
    raw = read_header(head)
    if not raw or not any(c.strip() for c in raw):
        return [Problem(name, None, None, None, "the file is empty: no header row")]
    if len(raw) == 1:
        for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if delim in raw[0]:
                return [Problem(name, 1, None, raw[0][:80], f"columns are separated by {label}; "
                                "the import format uses commas")]
    src.columns = [normalise_header(c) for c in raw]
    return check_header(src)


def check_header(src: SourceFile) -> list[Problem]:
    table = src.table
    assert table is not None
    name, cols = src.name, src.columns
    problems = []
    for col in cols:
        if col in IDENTIFIER_NAMES:
            problems.append(Problem(name, 1, col, None, "looks like a direct identifier and is refused: "
                                    "the store holds de-identified records only; remove this column"))
        elif col == "":
            problems.append(Problem(name, 1, None, None, "a column has no name"))
        elif col not in table.column_names:
            problems.append(Problem(name, 1, col, None, f"unknown column for a {table.name} file "
                                    f"(allowed: {', '.join(table.column_names)})"))
    for col in sorted({c for c in cols if cols.count(c) > 1 and c}):
        problems.append(Problem(name, 1, col, None, "column appears more than once in the header"))
    missing = [c for c in table.required if c not in cols]
    other = table_for_header(cols)
    if missing and other is not None and other is not table:
        return [Problem(name, 1, None, None, f"the file is named for {table.name} but has the "
                        f"columns of {other.name}")]
    for col in missing:
        problems.append(Problem(name, 1, col, None, "required column is missing"))
    return problems


# -------------------------------------------------------------- staging ---

def stage_file(db: Session, src: SourceFile, index: int) -> list[Problem]:
    """Read one file into a temp table with declared types; report what DuckDB rejected.

    DuckDB drops a row whose value it cannot parse, which would hide that row's other
    problems. So a file with such values is read again with those columns as text; the
    view then parses them and a rule reports each failure alongside the row's other
    problems. Clean files (the bulk case) are read once.
    """
    rejects = _read_staged(db, src, index)
    cast_columns = {r[1] for r in rejects if r[2] == "CAST"}
    if cast_columns:
        src.text_columns = cast_columns
        rejects = _read_staged(db, src, index)
    if src.rows == 0 and not rejects:
        return [Problem(src.name, None, None, None, "the file has a header but no data rows")]
    return reject_problems(src, rejects) + trailing_field_problems(db, src)


# Physical lines of a file, unparsed: one column, a delimiter and quote that never occur.
_LINES = ("read_csv(?, header = false, auto_detect = false, columns = {'line': 'VARCHAR'}, "
          "delim = '\x01', quote = '', escape = '', encoding = 'utf-8', ignore_errors = true)")
_TOO_MANY = """suffix(line, ',') AND length(line) - length(replace(line, ',', '')) > $commas
    AND (NOT contains(line, '"') OR (length(line) - length(replace(line, '"', ''))) % 2 = 0
         AND length(regexp_replace(line, '"([^"]|"")*"', '', 'g'))
           - length(replace(regexp_replace(line, '"([^"]|"")*"', '', 'g'), ',', '')) > $commas)"""


def trailing_field_problems(db: Session, src: SourceFile) -> list[Problem]:
    """Rows with more fields than the header, where the extra fields are empty.

    DuckDB drops empty fields beyond the header without a word ("a,b,c," reads as a,b,c),
    so a stray comma in a row whose last value is empty would shift values into the wrong
    columns unnoticed. One cheap pass over the raw lines counts such rows; only a file
    that has them pays for numbering its lines.
    """
    params = {"commas": len(src.columns) - 1}
    path = str(src.csv_path)
    count = db.scalar(f"SELECT count(*) FROM {_LINES.replace('?', '$path')} WHERE {_TOO_MANY}",
                      {**params, "path": path})
    if not count:
        return []
    lines = db.rows(f"""SELECT n FROM (SELECT row_number() OVER () AS n, line FROM {_LINES.replace('?', '$path')})
                        WHERE n > 1 AND {_TOO_MANY} ORDER BY n LIMIT {MAX_EXAMPLES}""", {**params, "path": path})
    problems = [Problem(src.name, int(n), None, None, "row has more fields than the header (a stray comma?); "
                        "check delimiters and quotes") for (n,) in lines]
    if count > len(lines):
        problems.append(Problem(src.name, None, None, None,
                                f"... and {count - len(lines)} more rows with more fields than the header"))
    return problems


def _read_staged(db: Session, src: SourceFile, index: int) -> list[tuple]:
    table = src.table
    assert table is not None and src.csv_path is not None
    known = {c.name: c for c in table.columns}
    types = {col: (known[col].type if col in known and col not in src.text_columns else "VARCHAR")
             for col in src.columns}
    src.staged = f"staged_{index}"
    cleaned = ", ".join(e for c in table.columns for e in _clean(c, src))
    db.execute(f"DROP TABLE IF EXISTS {src.staged}")  # outside any transaction: rowid = record index
    db.execute(  # unknown and refused columns are read but never kept
        f"CREATE TEMP TABLE {src.staged} AS SELECT *, hash({', '.join(table.key)}) AS _key_hash "
        f"FROM (SELECT {cleaned} FROM read_csv(?, header = true, "
        "auto_detect = false, delim = ',', quote = '\"', escape = '\"', dateformat = '%Y-%m-%d', "
        "columns = ?, store_rejects = true, rejects_scan = 'rejects_scan', "
        "rejects_table = 'rejects_errors', null_padding = false, encoding = 'utf-8'))",
        [str(src.csv_path), types],
    )
    src.rows = int(db.scalar(f"SELECT count(*) FROM {src.staged}"))
    rejects = db.rows(
        "SELECT line, column_name, error_type, csv_line, error_message FROM rejects_errors "
        "ORDER BY line, column_idx")
    db.execute("DROP TABLE IF EXISTS rejects_errors")
    db.execute("DROP TABLE IF EXISTS rejects_scan")
    src.rejected_lines = sorted({int(r[0]) for r in rejects})
    return rejects


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
            value = _cast_value(message)
            problems.append(Problem(src.name, int(line), column, value, TYPE_HINTS.get(col.type, message)))
        elif kind in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
            problems.append(Problem(src.name, int(line), None, _short(csv_line),
                                    f"row has the wrong number of fields ({message}); check "
                                    "delimiters and quotes"))
        elif kind == "INVALID UNICODE":
            problems.append(Problem(src.name, int(line), None, None,
                                    "row is not valid UTF-8: save the file as 'CSV UTF-8'"))
        else:
            problems.append(Problem(src.name, int(line), column, _short(csv_line), message))
    for (column, kind), count in seen.items():
        if count > MAX_EXAMPLES:
            problems.append(Problem(src.name, None, column, None,
                                    f"... and {count - MAX_EXAMPLES} more rows with the same problem"))
    return problems


def _cast_value(message: str) -> str | None:
    found = re.search(r'Could not convert string "(.*)" to', message)
    return found.group(1) if found else None


def _short(text: str | None, limit: int = 80) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def batch_view(db: Session, table: Table, files: list[SourceFile]) -> str:
    """A view over the batch's rows of one table (already cleaned when staged).

    _file and _idx locate a row in its file (turned into a row number later).
    """
    parts = []
    for number, src in enumerate(files):
        raw = [f"CAST(NULL AS VARCHAR) AS _raw_{c.name}" for c in table.columns
               if c.type != "VARCHAR" and c.name not in src.text_columns]
        extra = ", ".join(raw + [f"CAST({number} AS BIGINT) AS _file", "rowid AS _idx"])
        parts.append(f"SELECT *, {extra} FROM {src.staged}")
    view = f"batch_{table.name}"
    db.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + " UNION ALL ".join(parts))
    return view


_PARSE = {
    "DATE": "CAST(try_strptime({}, '%Y-%m-%d') AS DATE)",
    "INTEGER": "TRY_CAST({} AS INTEGER)",
    "BOOLEAN": "TRY_CAST({} AS BOOLEAN)",
}


def _clean(col: Column, src: SourceFile) -> list[str]:
    """Select expressions that stage one column: trimmed, empty as NULL, allowed values
    lower-cased; a typed column read as text gets parsed, with its text kept as _raw_
    (batch_view gives the other typed columns an empty _raw_ twin)."""
    c = col.name
    text = f"NULLIF(trim({c}), '')"
    if col.type == "VARCHAR":
        if c not in src.columns:
            return [f"CAST(NULL AS VARCHAR) AS {c}"]
        if col.allowed:  # lower() only the few values that need it: it is slow on 10M rows
            return [f"CASE WHEN {c} IN ({_sql_list(col.allowed)}) THEN {c} ELSE lower({text}) END AS {c}"]
        return [f"{text} AS {c}"]
    if c not in src.columns:
        return [f"CAST(NULL AS {col.type}) AS {c}"]
    if c in src.text_columns:
        return [f"{_PARSE[col.type].format(text)} AS {c}", f"{text} AS _raw_{c}"]
    return [c]


# --------------------------------------------------------------- checks ---

@dataclass(frozen=True)
class Rule:
    """A row rule: rows where `where` holds are wrong; `column`'s value is shown."""

    column: str | None
    where: str
    message: str
    value: str | None = None  # SQL for the value shown; defaults to the column


def row_rules(table: Table, today: dt.date) -> list[Rule]:
    """The rules every row of `table` must meet, as SQL predicates over the batch view."""
    rules: list[Rule] = []
    for col in table.columns:
        c = col.name
        if col.type != "VARCHAR":
            rules.append(Rule(c, f"_raw_{c} IS NOT NULL AND {c} IS NULL", TYPE_HINTS[col.type], f"_raw_{c}"))
        if col.required:
            unparsed = f" AND _raw_{c} IS NULL" if col.type != "VARCHAR" else ""
            rules.append(Rule(c, f"{c} IS NULL{unparsed}", "required value is missing"))
        if col.allowed:
            rules.append(Rule(c, f"{c} NOT IN ({_sql_list(col.allowed)})",
                              f"not an allowed value (allowed: {', '.join(col.allowed)})"))
        if col.low is not None and col.high is not None:
            rules.append(Rule(c, f"{c} NOT BETWEEN {col.low} AND {col.high}",
                              f"out of range (must be {col.low} to {col.high})"))
        if col.code and (table is PARTICIPANTS or c != "participant_id"):  # else: must be known
            rules.append(Rule(c, f"NOT regexp_full_match({c}, '{CODE_PATTERN}')",
                              "not a pseudonymous code: use letters, digits and - _ . only "
                              "(no names, spaces or e-mail addresses)"))
        if col.type == "DATE":
            rules.append(Rule(c, f"{c} > DATE '{today.isoformat()}'",
                              f"date is in the future (after today, {today.isoformat()})"))
            rules.append(Rule(c, f"{c} < DATE '{EARLIEST_DATE}'", f"impossible date (before {EARLIEST_DATE})"))
    if table is PARTICIPANTS:
        rules += [
            Rule("exited_on", "exited_on < enrolled_on", "exit is before enrollment",
                 "CAST(exited_on AS VARCHAR) || ' < enrolled_on ' || CAST(enrolled_on AS VARCHAR)"),
            Rule("exit_reason", "exited_on IS NOT NULL AND exit_reason IS NULL",
                 "exit_reason is required when exited_on is given"),
            Rule("exited_on", "exit_reason IS NOT NULL AND exited_on IS NULL",
                 "exited_on is required when exit_reason is given", "exit_reason"),
        ]
    return rules


def activity_rules(table: Table) -> list[Rule]:
    """Rules that need the participant: known, and activity on or after enrollment.

    They run over the batch joined to known_participants (columns k_*)."""
    d = table.date_column
    known = Rule("participant_id", "k_participant_id IS NULL AND participant_id IS NOT NULL",
                 "unknown participant: not in the store and not in this import's participants file")
    if table is ASSESSMENTS:  # its own window and item rules: analytics.ingest.assessments
        return [known] + [Rule(*r) for r in assessment_rules.row_rules()]
    return [known, Rule(d, f"{d} < k_enrolled_on", "activity before the participant's enrollment",
                        f"CAST({d} AS VARCHAR) || ' < enrolled_on ' || CAST(k_enrolled_on AS VARCHAR)")]


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def run_rules(db: Session, source: str, rules: list[Rule], files: list[SourceFile]) -> list[Problem]:
    """Count every rule's failures in one pass over the rows; list examples only for
    the rules that fail."""
    counts = db.rows("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE coalesce({r.where}, false))" for r in rules) + f" FROM {source}")[0]
    problems: list[Problem] = []
    for rule, count in zip(rules, counts):
        if count:
            problems += rule_examples(db, source, rule, count, files)
    return problems


def rule_examples(db: Session, source: str, rule: Rule, count: int, files: list[SourceFile]) -> list[Problem]:
    shown = rule.value or rule.column or "NULL"
    examples = db.rows(
        f"SELECT _file, _idx, CAST({shown} AS VARCHAR) FROM {source} "
        f"WHERE coalesce({rule.where}, false) ORDER BY 1, 2 LIMIT {MAX_EXAMPLES}")
    problems = [Problem(files[f].name, row_number(files[f], idx), rule.column, value, rule.message)
                for f, idx, value in examples]
    if count > MAX_EXAMPLES:
        problems.append(Problem(files[0].name if len(files) == 1 else "(several files)", None, rule.column,
                                None, f"... and {count - MAX_EXAMPLES} more rows: {rule.message}"))
    return problems


def row_number(src: SourceFile, idx: int) -> int:
    """Spreadsheet row of the idx-th accepted record, stepping over rejected lines."""
    line = idx + 2
    start = 0
    while True:
        passed = bisect.bisect_right(src.rejected_lines, line, lo=start)
        if passed == start:
            return line
        line += passed - start
        start = passed


def duplicate_problems(db: Session, view: str, columns: tuple[str, ...], files: list[SourceFile]
                       ) -> list[Problem]:
    """Rows whose key an earlier row of the same import already had.

    The key was hashed when staged: grouping by the hash is the cheap test, and a
    colliding hash only costs the exact query below.
    """
    if not db.scalar(f"SELECT count(*) FROM (SELECT 1 FROM {view} GROUP BY _key_hash "
                     "HAVING count(*) > 1 LIMIT 1)"):
        return []
    key = ", ".join(columns)
    dups = db.rows(f"""
        WITH d AS (SELECT {key}, _file, _idx, _file * {_FILE_STRIDE} + _idx AS pos,
                          count(*) OVER (PARTITION BY {key}) AS n,
                          min(_file * {_FILE_STRIDE} + _idx) OVER (PARTITION BY {key}) AS first
                   FROM {view})
        SELECT _file, _idx, n, {" || ' / ' || ".join(f"CAST({k} AS VARCHAR)" for k in columns)}, first
        FROM d WHERE n > 1 AND pos > first ORDER BY _file, _idx LIMIT {MAX_EXAMPLES}""")
    extra = db.scalar(f"SELECT count(*) - count(DISTINCT ({key})) FROM {view}")
    problems = []
    for file_no, idx, n, shown, first in dups:
        first_src = files[first // _FILE_STRIDE]
        first_row = row_number(first_src, first % _FILE_STRIDE)
        problems.append(Problem(files[file_no].name, row_number(files[file_no], idx), key, shown,
                                f"duplicate key ({key}): same as {first_src.name} row {first_row}"))
    if extra > len(dups):
        problems.append(Problem(files[0].name if len(files) == 1 else "(several files)", None, key,
                                None, f"... and {extra - len(dups)} more duplicate rows"))
    return problems


def known_participants(db: Session, has_batch: bool) -> None:
    """Temp table of every participant an activity row may name, with their enrollment."""
    db.execute("DROP TABLE IF EXISTS known_participants")
    if has_batch:
        db.execute("""CREATE TEMP TABLE known_participants AS
            SELECT participant_id, any_value(enrolled_on) AS enrolled_on FROM batch_participants
            WHERE participant_id IS NOT NULL GROUP BY participant_id
            UNION ALL
            SELECT participant_id, enrolled_on FROM participants
            WHERE participant_id NOT IN (SELECT participant_id FROM batch_participants
                                         WHERE participant_id IS NOT NULL)""")
    else:
        db.execute("CREATE TEMP TABLE known_participants AS SELECT participant_id, enrolled_on FROM participants")


def enrollment_moves(db: Session, files: list[SourceFile]) -> list[Problem]:
    """A changed enrolled_on must not leave stored activity before the new enrollment."""
    problems = []
    for table in (*ACTIVITY_TABLES, ASSESSMENTS):
        d = table.date_column
        lead = assessment_rules.DAYS_BEFORE_ENROLLMENT if table is ASSESSMENTS else 0
        rows = db.rows(f"""
            SELECT b._file, b._idx, b.participant_id, min(a.{d})
            FROM batch_participants b JOIN {table.name} a USING (participant_id)
            WHERE a.{d} < b.enrolled_on - CAST(? AS INTEGER) GROUP BY ALL ORDER BY 1, 2 LIMIT {MAX_EXAMPLES}""",
                       [lead])
        for file_no, idx, pid, first in rows:
            problems.append(Problem(files[file_no].name, row_number(files[file_no], idx), "enrolled_on",
                                    pid, f"the store already has {table.name} for this participant on "
                                    f"{first}, before the new enrolled_on"))
    return problems


# ---------------------------------------------------------------- write ---

def apply_table(db: Session, table: Table, view: str, files: list[SourceFile]
                ) -> tuple[list[TableCounts], list[tuple[str, list[str]]]]:
    """Insert new rows and update changed ones; count new / updated / unchanged per file."""
    cols = ", ".join(table.column_names)
    per_file = [TableCounts(rows=src.rows, new=src.rows) for src in files]
    stored = db.scalar(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table.name} LIMIT 1)")
    if not stored:  # first load of this table: nothing to match against
        db.execute(f"INSERT INTO {table.name} SELECT {cols} FROM {view}")
        return per_file, []
    key = " AND ".join(f"o.{k} = b.{k}" for k in table.key)
    flags = ", ".join(f"CASE WHEN o.{c} IS DISTINCT FROM b.{c} THEN '{c}' END" for c in table.value_columns)
    db.execute("DROP TABLE IF EXISTS matched")
    db.execute(f"""CREATE TEMP TABLE matched AS
        SELECT b.*, list_filter([{flags}], lambda x: x IS NOT NULL) AS _changed
        FROM {view} b JOIN {table.name} o ON {key}""")
    for file_no, n_matched, n_updated in db.rows(
            "SELECT _file, count(*), count(*) FILTER (WHERE len(_changed) > 0) FROM matched GROUP BY _file"):
        c = per_file[file_no]
        c.new, c.updated, c.unchanged = c.rows - n_matched, n_updated, n_matched - n_updated
    if any(c.new for c in per_file):
        db.execute(f"INSERT INTO {table.name} SELECT {cols} FROM {view} b ANTI JOIN matched m USING ({', '.join(table.key)})")
    updated: list[tuple[str, list[str]]] = []
    if any(c.updated for c in per_file):
        sets = ", ".join(f"{c} = m.{c}" for c in table.value_columns)
        where = " AND ".join(f"{table.name}.{k} = m.{k}" for k in table.key)
        db.execute(f"UPDATE {table.name} SET {sets} FROM (SELECT * FROM matched WHERE len(_changed) > 0) m "
                   f"WHERE {where}")
        if table is PARTICIPANTS:
            updated = [(pid, list(ch)) for pid, ch in db.rows(
                "SELECT participant_id, _changed FROM matched WHERE len(_changed) > 0 ORDER BY 1")]
    return per_file, updated


def log_batch(db: Session, files: list[SourceFile], counts: dict[str, TableCounts], source: str) -> int:
    batch_id = int(db.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM import_batches"))
    db.execute("INSERT INTO import_batches (batch_id, imported_at, file_count, source) "
               "VALUES (?, now(), ?, ?)", [batch_id, len(files), source])
    for src in files:
        c = counts[src.name]
        db.execute("INSERT INTO import_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [batch_id, src.name, src.table.name, src.sha256, c.rows, c.new, c.updated, c.unchanged])
    return batch_id


# ----------------------------------------------------------------- main ---

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
    with tempfile.TemporaryDirectory(prefix="outcomes-import-") as tmp, \
            ThreadPoolExecutor(max_workers=1) as pool:
        hashes = [pool.submit(sha256_of, src.path) for src in sources]
        readable = []
        for index, src in enumerate(sources):
            say(f"checking {src.name}")
            found_here = inspect_file(src, Path(tmp))
            problems += found_here
            if stageable(src, found_here):
                say(f"reading {src.name}")
                problems += stage_file(db, src, index)  # temp tables, outside the store
                readable.append(src)
        for src, digest in zip(sources, hashes):
            src.sha256 = digest.result()
    with db.transaction(commit=not dry_run):
        problems += check_batch(db, readable, today, say)
        if problems:
            db.discard()  # nothing of this batch may land
            problems.sort(key=lambda p: (p.file, p.row or 0))
            return result
        say("writing")
        write_batch(db, readable, result, source)
        audit.record(db, "import", f"batch {result.batch_id}", user=user, source=source,
                     files=[src.name for src in readable], counts=result.counts)
    if not dry_run and result.changed:
        store.checkpoint()
    return result


def stageable(src: SourceFile, problems: list[Problem]) -> bool:
    """Rows are still checked when only some header columns are wrong (unknown or refused
    columns are read and ignored), but not when a required column is missing or the file
    itself is unreadable: then every row would repeat the same complaint."""
    if src.table is None or src.csv_path is None or not src.columns:
        return False
    if len(set(src.columns)) != len(src.columns) or "" in src.columns:
        return False
    if any(c not in src.columns for c in src.table.required):
        return False
    return not any(p.row is None for p in problems)


def check_batch(db: Session, files: list[SourceFile], today: dt.date, say: Progress) -> list[Problem]:
    """Every row-level and cross-table rule, over all staged files."""
    problems: list[Problem] = []
    by_table = _group(files)
    has_participants = PARTICIPANTS.name in by_table
    if has_participants:
        group = by_table[PARTICIPANTS.name]
        view = batch_view(db, PARTICIPANTS, group)
        problems += run_rules(db, view, row_rules(PARTICIPANTS, today), group)
        problems += duplicate_problems(db, view, PARTICIPANTS.key, group)
        problems += enrollment_moves(db, group)
    known_participants(db, has_participants)
    for table in (*ACTIVITY_TABLES, ASSESSMENTS):
        group = by_table.get(table.name)
        if not group:
            continue
        say(f"checking rows of {table.name}")
        view = batch_view(db, table, group)
        joined = (f"(SELECT b.*, k.participant_id AS k_participant_id, k.enrolled_on AS k_enrolled_on "
                  f"FROM {view} b LEFT JOIN known_participants k USING (participant_id))")
        problems += run_rules(db, joined, row_rules(table, today) + activity_rules(table), group)
        problems += duplicate_problems(db, view, table.key, group)
    return problems


def write_batch(db: Session, files: list[SourceFile], result: ImportResult, source: str) -> None:
    per_file: dict[str, TableCounts] = {}
    for table_name, group in _group(files).items():
        table = TABLES[table_name]
        counts, updated = apply_table(db, table, batch_view(db, table, group), group)
        total = TableCounts()
        for src, c in zip(group, counts):
            per_file[src.name] = c
            total.rows += c.rows
            total.new += c.new
            total.updated += c.updated
            total.unchanged += c.unchanged
        result.counts[table_name] = total
        result.updated_participants += updated
    result.batch_id = log_batch(db, files, per_file, source)


def _group(files: list[SourceFile]) -> dict[str, list[SourceFile]]:
    grouped: dict[str, list[SourceFile]] = {}
    for table in TABLES.values():
        members = [f for f in files if f.table is table]
        if members:
            grouped[table.name] = members
    return grouped


def problems_csv(problems: list[Problem]) -> str:
    """The problem report as CSV text (file,row,column,value,problem)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "row", "column", "value", "problem"])
    for p in problems:
        writer.writerow([p.file, "" if p.row is None else p.row, p.column or "", p.value or "", p.problem])
    return out.getvalue()
