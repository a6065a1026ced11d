"""Finding and reading the input files: which table a file is for, whether it is the text
or workbook it claims to be, its header, and a workbook turned into CSV within bounds.

Every check here is about a whole file and runs before its rows are read, so a wrong or
hostile file is refused quickly with one clear message.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import datetime as dt
import hashlib
import posixpath
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from analytics.ingest.limits import (
    MAX_HEADER_COLUMNS,
    MAX_XLSX_CELL_CHARS,
    MAX_XLSX_ROWS,
    MAX_XLSX_UNPACKED_BYTES,
)
from analytics.ingest.problems import Problem, capped, file_problem
from analytics.store.schema import IDENTIFIER_NAMES, TABLES, Table

SUFFIXES = {".csv", ".xlsx"}
HEAD_BYTES = 65536
MAX_HEADER_BYTES = 4 * 1024 * 1024
_CHUNK = 1 << 22
# An XML cell's text cannot hold a literal '<'; with entities (&amp; is 5 bytes) and 4-byte
# UTF-8 a cell of MAX_XLSX_CELL_CHARS characters spans at most this many bytes.
_MAX_CELL_BYTES = MAX_XLSX_CELL_CHARS * 6


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


class WorkbookRefused(Exception):
    """A workbook is over one of the bounds in limits.py; the message says which."""


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
            problems.append(file_problem(str(path), "no such file or folder"))
    if not files and not problems:
        problems.append(file_problem(", ".join(map(str, paths)) or "(none)", "no .csv or .xlsx files to import"))
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
    """The file's first bytes and, if they plainly are not what its suffix says, why.

    NUL bytes past the first bytes are found by fingerprint(), which reads the whole file.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
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


@dataclass(frozen=True)
class Fingerprint:
    """One pass over a file: its SHA-256 and, for a CSV, the line of its first NUL byte
    (binary data), and how many lines that end in a comma have each number of commas
    (None when the file holds a quote, whose commas only a CSV parser can count)."""

    sha256: str
    nul_line: int | None = None
    comma_endings: dict[int, int] | None = None

    def long_lines(self, columns: int) -> int | None:
        """Data lines ending in a comma with more fields than `columns`, if known."""
        if self.comma_endings is None:
            return None
        return sum(n for commas, n in self.comma_endings.items() if commas >= columns)


def fingerprint(path: Path) -> Fingerprint:
    """One pass over the whole file, in a thread beside the staging: its hash; for a CSV,
    whether it holds a NUL byte anywhere (DuckDB would read it into a value) and the comma
    count of lines ending in a comma (numpy over each chunk: a second for 10M lines, where
    DuckDB's own pass over the lines takes several)."""
    digest = hashlib.sha256()
    csv_file = path.suffix.lower() == ".csv"
    found = False
    shapes: _LineShapes | None = _LineShapes() if csv_file else None
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            found = found or (csv_file and b"\x00" in chunk)
            if shapes is not None and not shapes.add(chunk):
                shapes = None  # quotes: leave the count to DuckDB
    return Fingerprint(digest.hexdigest(), _line_of_nul(path) if found else None,
                       shapes.finish() if shapes is not None else None)


class _LineShapes:
    """Counts, per number of commas, the lines (header excluded) that end in a comma."""

    def __init__(self) -> None:
        self.carry = b""
        self.header = True
        self.counts: dict[int, int] = {}

    def add(self, chunk: bytes) -> bool:
        """Take the chunk's complete lines; False if the file holds a quote character."""
        if b'"' in chunk:
            return False
        data = self.carry + chunk
        end = data.rfind(b"\n") + 1
        self.carry = data[end:]
        self._lines(data[:end])
        return True

    def finish(self) -> dict[int, int]:
        if self.carry:
            self._lines(self.carry + b"\n")
        return self.counts

    def _lines(self, data: bytes) -> None:
        """Only the lines ending in a comma (few) get their commas counted."""
        if not data:
            return
        a = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(a == 10)  # each line's '\n'
        last = ends - 1
        last = last - ((last >= 0) & (a[np.maximum(last, 0)] == 13))  # CRLF
        starts = np.concatenate(([0], ends[:-1] + 1))
        ending = (last >= starts) & (a[np.maximum(last, 0)] == 44)
        if self.header:
            ending[0] = False
            self.header = False
        if not ending.any():
            return
        commas = np.flatnonzero(a == 44)
        per_line = (np.searchsorted(commas, ends[ending]) - np.searchsorted(commas, starts[ending]))
        for k, n in zip(*np.unique(per_line, return_counts=True)):
            self.counts[int(k)] = self.counts.get(int(k), 0) + int(n)


def _line_of_nul(path: Path) -> int:
    lines = 1
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            at = chunk.find(b"\x00")
            if at >= 0:
                return lines + chunk.count(b"\n", 0, at)
            lines += chunk.count(b"\n")
    return lines


def nul_problem(src: SourceFile, line: int) -> Problem:
    return Problem(src.name, None, None, None,
                   f"the file is binary data, not CSV text (a NUL byte on line {line:,}): "
                   "export it again as 'CSV UTF-8'")


def first_line(path: Path, limit: int = MAX_HEADER_BYTES) -> bytes:
    """The file's first line (its header), at most `limit` bytes."""
    with path.open("rb") as fh:
        return fh.readline(limit)


def read_header(head: bytes) -> list[str]:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    return next(csv.reader([first]), []) if first else []


# --------------------------------------------------------------- workbooks ---

def check_workbook(path: Path) -> None:
    """Refuse a workbook over the bounds before openpyxl reads any of it: its unpacked size,
    the rows of its first sheet (empty ones too) and the longest text a cell could hold."""
    with zipfile.ZipFile(path) as book:
        infos = book.infolist()
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_XLSX_UNPACKED_BYTES:
            raise WorkbookRefused(f"the workbook unpacks to {unpacked / 1e6:,.0f} MB, more than the "
                                  f"{MAX_XLSX_UNPACKED_BYTES / 1e6:,.0f} MB allowed: export the sheet as CSV UTF-8")
        names = {i.filename for i in infos}
        sheet = _first_sheet(book, names)
        for part in (p for p in names if p.lower().endswith("sharedstrings.xml")):
            with book.open(part) as fh:
                if _longest_text(fh) > _MAX_CELL_BYTES:
                    raise WorkbookRefused(_cell_too_long())
        if sheet is not None:
            with book.open(sheet) as fh:
                rows = _count_rows(fh)
            if rows > MAX_XLSX_ROWS:
                raise WorkbookRefused(f"the first sheet has {rows:,} rows (empty ones included), more than "
                                      f"the {MAX_XLSX_ROWS:,} a workbook may have: delete the empty rows "
                                      "below the data, or export the sheet as CSV UTF-8")


def _first_sheet(book: zipfile.ZipFile, names: set[str]) -> str | None:
    """The part holding the first sheet, from workbook.xml and its relationships."""
    try:
        workbook = book.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = book.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
        rid = re.search(r"<(?:\w+:)?sheet\b[^>]*?\br:id=\"([^\"]+)\"", workbook).group(1)
        target = re.search(r"<Relationship\b[^>]*?Id=\"" + re.escape(rid) + r"\"[^>]*>", rels).group(0)
        target = re.search(r"Target=\"([^\"]+)\"", target).group(1)
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        return part if part in names else None
    except (KeyError, AttributeError):
        sheets = sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        return sheets[0] if sheets else None


def _count_rows(fh: IO[bytes]) -> int:
    """Row elements in a sheet's XML, counted in chunks without parsing it."""
    pattern = re.compile(rb"<(?:\w+:)?row[\s/>]")
    count, tail = 0, b""
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        data = tail + chunk
        cut = max(len(data) - 16, 0)  # a tag split across chunks is counted in the next round
        count += len(pattern.findall(data, 0, cut))
        tail = data[cut:]
    return count + len(pattern.findall(tail))


def _longest_text(fh: IO[bytes]) -> int:
    """The longest stretch of bytes without '<': a bound on the longest text in the XML."""
    longest = run = 0
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        parts = chunk.split(b"<")
        if len(parts) == 1:
            run += len(chunk)
        else:
            longest = max(longest, run + len(parts[0]), max(map(len, parts[1:-1]), default=0))
            run = len(parts[-1])
        longest = max(longest, run)
    return longest


def _cell_too_long() -> str:
    return (f"a cell holds more than {MAX_XLSX_CELL_CHARS:,} characters (Excel's own limit): "
            "this is not a sheet of the import format")


def xlsx_to_csv(path: Path, workdir: Path) -> Path:
    """Copy the first sheet of a workbook to CSV row by row, so both formats share one
    checked path and memory stays flat; bounded by check_workbook and a row cap.

    Excel date cells become ISO dates; whole-number floats lose their '.0'; trailing empty
    rows are dropped.
    """
    from openpyxl import load_workbook

    check_workbook(path)
    out = workdir / f"{path.stem}.csv"
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            pending: list[list[str]] = []  # empty rows: kept only if data follows
            for number, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
                if number > MAX_XLSX_ROWS:
                    raise WorkbookRefused(f"the first sheet has more than {MAX_XLSX_ROWS:,} rows: "
                                          "export the sheet as CSV UTF-8")
                cells = [_cell(v) for v in row]
                if any(len(c) > MAX_XLSX_CELL_CHARS for c in cells):
                    raise WorkbookRefused(_cell_too_long())
                if not any(c.strip() for c in cells):
                    pending.append(cells)
                    continue
                writer.writerows(pending)  # empty rows inside the data stay rows
                pending = []
                writer.writerow(cells)
    finally:
        book.close()
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


# ------------------------------------------------------------------ header ---

def inspect_file(src: SourceFile, workdir: Path) -> list[Problem]:
    """File-level checks: type, encoding, delimiter, header. Fills src.table/columns."""
    name = src.name
    if src.path.suffix.lower() not in SUFFIXES:
        return [file_problem(name, f"unsupported file type '{src.path.suffix}': use .csv (UTF-8) or .xlsx")]
    src.table = table_for_name(src.path)
    if src.table is None:
        return [file_problem(name, "cannot tell which table this file is for: its name "
                             "must start with participants, attendance, checkins, mentoring or assessments")]
    head, wrong = sniff(src.path)
    if wrong:
        return [file_problem(name, f"the file is {wrong}")]
    if src.path.suffix.lower() == ".xlsx":
        try:
            src.csv_path = xlsx_to_csv(src.path, workdir)
        except WorkbookRefused as exc:
            return [file_problem(name, f"the workbook is refused: {exc}")]
        except Exception as exc:  # openpyxl raises many types for broken workbooks
            return [file_problem(name, f"cannot read the workbook: {exc}")]
        with src.csv_path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    else:
        src.csv_path = src.path
    raw = read_header(first_line(src.csv_path))
    if not raw or not any(c.strip() for c in raw):
        return [file_problem(name, "the file is empty: no header row")]
    if len(raw) == 1:
        for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if delim in raw[0]:
                return [Problem(name, 1, None, raw[0][:80], f"columns are separated by {label}; "
                                "the import format uses commas")]
    if len(raw) > MAX_HEADER_COLUMNS:
        return [Problem(name, 1, None, None, f"the header has {len(raw):,} columns; a {src.table.name} file "
                        f"has at most {len(src.table.columns)} ({', '.join(src.table.column_names)})")]
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
    return capped(problems)


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
