"""Property tests: a corrupted batch either lands whole or not at all.

Hypothesis corrupts the valid small data set (bad cell values, missing or unknown
columns, duplicate rows, rows for unknown participants, truncated files, stray
delimiters, Latin-1 encoding, swapped file names) and imports it, into an empty
store or into one that already holds an earlier batch. The invariant:

- either result.ok and the store holds every row of the batch (and nothing else
  changed), or
- not result.ok, there are problems, each names one of the batch's files, and the
  store is exactly as it was before (no partial load).

Where a corruption clearly breaks (or clearly keeps) the format, the tests also
check that the problem is reported at the right file, row (header = row 1) and
column, or that the import is accepted.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.ingest import importer
from analytics.store.schema import PARTICIPANTS, TABLES, Table
from analytics.store.connection import Store
from conftest import TODAY, assert_same, snapshot

NAMES = tuple(TABLES)  # participants, attendance, checkins, mentoring
BAD_VALUES = ("", "abc", "2025-02-30", "2099-01-01", "-3", "11", "maybe", "John Smith", "a@b.org")
BEFORE_ENROLLMENT = "<date before enrollment>"  # placeholder: computed for the row's participant
UNKNOWN_COLUMNS = ("notes", "comment", "extra_info", "unknown_col", "first_name", "email", "phone", "dob")
UNKNOWN_PARTICIPANT = "X-NOT-ENROLLED-1"

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------ the batch ---

@dataclass
class Batch:
    """The four files as lines of text (no newline), with how each is written."""

    lines: dict[str, list[str]]  # file name -> header line + data lines
    encoding: dict[str, str] = field(default_factory=dict)
    no_final_newline: set[str] = field(default_factory=set)

    def write(self, folder: Path) -> None:
        for name, lines in self.lines.items():
            text = "\n".join(lines) + ("" if name in self.no_final_newline else "\n")
            (folder / name).write_bytes(text.encode(self.encoding.get(name, "utf-8")))

    def header(self, name: str) -> list[str]:
        return self.lines[name][0].split(",")


@dataclass(frozen=True)
class Expect:
    """A problem the import must report: in `file`, at `row` and `column` (None: any)."""

    file: str
    row: int | None = None
    column: str | None = None
    file_level_ok: bool = False  # a whole-file problem (row None) also counts

    def found_in(self, problems: list[importer.Problem]) -> bool:
        for p in problems:
            if p.file != self.file:
                continue
            if self.file_level_ok and p.row is None:
                return True
            if self.row is not None and p.row != self.row:
                continue
            if self.column is not None and p.column != self.column:
                continue
            return True
        return False


def file_of(table: str) -> str:
    return f"{table}.csv"


class Base:
    """The valid files' text (by file name), a store file holding the earlier batch, and
    each participant's enrolled_on."""

    def __init__(self, texts: dict[str, str], template: Path, enrolled: dict[str, str]) -> None:
        self.texts, self.template, self.enrolled = texts, template, enrolled

    def __repr__(self) -> str:  # keeps hypothesis' falsifying examples readable
        return "<valid small data set>"


@pytest.fixture(scope="module")
def base(tmp_path_factory, small_frames: dict[str, pd.DataFrame]):
    """The valid files' text, and a store file that already holds an earlier batch
    (the first 30 participants and their activity)."""
    root = tmp_path_factory.mktemp("properties")
    valid, prior = root / "valid", root / "prior"
    valid.mkdir()
    prior.mkdir()
    first = set(small_frames["participants"].participant_id.iloc[:30])
    for name, frame in small_frames.items():
        frame.to_csv(valid / file_of(name), index=False)
        frame[frame.participant_id.isin(first)].to_csv(prior / file_of(name), index=False)
    texts = {file_of(n): (valid / file_of(n)).read_text(encoding="utf-8") for n in NAMES}
    for text in texts.values():  # the corruptions below split lines on commas
        assert '"' not in text and "\r" not in text
    template = root / "prior.duckdb"
    with Store.open(template) as store:
        assert importer.import_files(store, [prior], today=TODAY).ok
        store.checkpoint()
    assert not Path(f"{template}.wal").exists()
    enrolled = dict(zip(small_frames["participants"].participant_id,
                        small_frames["participants"].enrolled_on.astype(str)))
    return Base(texts, template, enrolled)


def fresh_batch(base: Base) -> Batch:
    return Batch({name: text.splitlines() for name, text in base.texts.items()})


def open_store(folder: Path, base: Base, with_prior: bool) -> Store:
    path = folder / "store.duckdb"
    if with_prior:
        shutil.copyfile(base.template, path)
    return Store.open(path)


# ------------------------------------------------------- store contents ---

def normalise(table: Table, header: list[str], fields: list[str]) -> tuple:
    """A file row as the store would hold it, every value as text (None for blank)."""
    values = dict(zip((h.strip().lower() for h in header), fields))
    out = []
    for col in table.columns:
        v = values.get(col.name, "").strip()
        if col.allowed or col.type == "BOOLEAN":
            v = v.lower()
        out.append(v or None)
    return tuple(out)


def stored_rows(store: Store, table: Table) -> list[tuple]:
    cols = ", ".join(f"CAST({c} AS VARCHAR)" for c in table.column_names)
    return store.rows(f"SELECT {cols} FROM {table.name}")


def key_of(table: Table, row: tuple) -> tuple:
    return tuple(row[table.column_names.index(k)] for k in table.key)


def assert_holds_batch(store: Store, folder: Path, before: dict[str, list[tuple]]) -> None:
    """After an accepted import: each table is the earlier rows whose key the batch
    does not have, plus every row of the batch with the batch's values."""
    for path in sorted(folder.glob("*.csv")):
        table = TABLES[path.stem]
        with path.open(encoding="utf-8", newline="") as fh:
            records = list(csv.reader(fh))
        header, data = records[0], records[1:]
        for number, record in enumerate(data, start=2):
            assert len(record) == len(header), (
                f"{path.name} row {number} has {len(record)} fields, the header {len(header)}, "
                f"but the import was accepted: {','.join(record)!r}")
        batch = {normalise(table, header, r) for r in data}
        assert len(batch) == len(data), f"{path.name}: the batch has duplicate rows but was accepted"
        keys = {key_of(table, r) for r in batch}
        expected = {r for r in before[table.name] if key_of(table, r) not in keys} | batch
        now = stored_rows(store, table)
        assert len(now) == len(set(now)), f"{table.name}: duplicate rows in the store"
        missing, extra = expected - set(now), set(now) - expected
        assert not missing and not extra, (
            f"{table.name}: store differs from earlier rows + batch: {len(missing)} batch/earlier rows "
            f"missing (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})")


def import_and_check(batch: Batch, base: Base, with_prior: bool) -> importer.ImportResult:
    """Write the batch to a fresh folder, import it into a fresh store (empty, or holding
    the earlier batch), and assert the all-or-nothing invariant."""
    with tempfile.TemporaryDirectory(prefix="props-") as tmp:
        root = Path(tmp)
        folder = root / "batch"
        folder.mkdir()
        batch.write(folder)
        store = open_store(root, base, with_prior)
        try:
            before = snapshot(store)
            before_rows = {t.name: stored_rows(store, t) for t in TABLES.values()}
            result = importer.import_files(store, [folder], today=TODAY)
            if result.ok:
                assert not result.problems
                assert_holds_batch(store, folder, before_rows)
                batches = store.df("SELECT batch_id FROM import_batches ORDER BY 1").batch_id.tolist()
                assert batches == before["import_batches"].batch_id.tolist() + [len(batches)]
            else:
                assert len(result.problems) > 0
                names = set(batch.lines)
                for p in result.problems:
                    assert p.file in names, f"problem does not name a file of the batch: {p}"
                    assert p.problem
                assert_same(before, snapshot(store))  # nothing of the batch landed
        finally:
            store.close()
    return result


# ------------------------------------------------------------ corruptions ---
# Each draws what it needs from `data`, changes the batch, and returns the problem the
# import must then report (or None where the outcome is not clear-cut).

def data_row(data, batch: Batch, name: str) -> int:
    """A data line index (0-based; spreadsheet row = index + 2)."""
    return data.draw(st.integers(0, len(batch.lines[name]) - 2), label="data index")


def before_enrollment(base, pid: str, data) -> str | None:
    enrolled = base.enrolled.get(pid)
    if enrolled is None:
        return None
    days = data.draw(st.integers(1, 400), label="days before enrollment")
    return (dt.date.fromisoformat(enrolled) - dt.timedelta(days=days)).isoformat()


def cell_outcome(table: Table, column: str, value: str, row: dict[str, str]) -> str | None:
    """'bad': the import must report this cell; 'ok': the file is still valid; None: unclear."""
    col = table.column(column)
    original = row[column]
    if value == original:
        return "ok"
    if column == "participant_id":
        if table is PARTICIPANTS:  # a new valid code orphans the old participant's activity
            return "bad" if value in ("", "-3", "John Smith", "a@b.org") else None
        return "bad"  # not a known participant (or blank)
    if column == "mentor_id":
        return "bad" if value in ("", "-3", "John Smith", "a@b.org") else None
    if value == "":
        if col.required:
            return "bad"
        if column == "exited_on":
            return "bad" if row["exit_reason"] else "ok"
        if column == "exit_reason":
            return "bad" if row["exited_on"] else "ok"
        return "ok"
    if col.type == "DATE":
        if value in ("2025-02-30", "2099-01-01") or not value[:1].isdigit() or len(value) != 10:
            return "bad"
        # a real past date
        if table.date_column == column:
            return "bad" if value < row["_enrolled"] else None
        if column == "exited_on":
            return "bad" if value < row["enrolled_on"] else None
        if column == "sobriety_start":
            return "ok"
        return None  # enrolled_on moved: activity may now be before it
    if col.type == "INTEGER":
        try:
            number = int(value)
        except ValueError:
            return "bad"
        return "ok" if col.low <= number <= col.high else "bad"
    if col.type == "BOOLEAN":
        return "bad"  # true/false only
    if col.allowed:
        return "ok" if value in col.allowed else "bad"
    if value in ("abc", "maybe", "11", "-3", "2025-02-30", "2099-01-01") or value[:1].isdigit():
        return "ok"  # free text (program, site, gender, referral_source)
    return None  # a name or an e-mail address in free text: policy, not format


def corrupt_cell(data, batch: Batch, base: Base) -> tuple[Expect | None, str | None]:
    """Replace one cell with a bad value. Returns (expected problem, 'ok'/'bad'/None).

    The outcome is only judged on an otherwise intact file (the header of its table,
    every line with all its fields)."""
    table = TABLES[data.draw(st.sampled_from(NAMES), label="table")]
    name = file_of(table.name)
    header = batch.header(name)
    index = data_row(data, batch, name)
    fields = batch.lines[name][index + 1].split(",")
    at = data.draw(st.integers(0, len(fields) - 1), label="field")
    value = data.draw(st.sampled_from(BAD_VALUES + (BEFORE_ENROLLMENT,)), label="value")
    intact = tuple(header) == table.column_names and len(fields) == len(header)
    pid = fields[header.index("participant_id")] if "participant_id" in header else fields[0]
    if value == BEFORE_ENROLLMENT:
        value = before_enrollment(base, pid, data) or "abc"
    outcome = None
    if intact:
        row = dict(zip(header, fields))
        row["_enrolled"] = base.enrolled.get(pid, "")
        outcome = cell_outcome(table, header[at], value, row)
    fields[at] = value
    batch.lines[name][index + 1] = ",".join(fields)
    expect = Expect(name, index + 2, header[at]) if outcome == "bad" else None
    return expect, outcome


def drop_required_column(data, batch: Batch, base) -> Expect:
    table = TABLES[data.draw(st.sampled_from(NAMES), label="table")]
    name = file_of(table.name)
    header = batch.header(name)
    present = [c for c in table.required if c in header] or header  # (after a swap)
    column = data.draw(st.sampled_from(present), label="column")
    at = header.index(column)
    batch.lines[name] = [",".join(f for i, f in enumerate(line.split(",")) if i != at)
                         for line in batch.lines[name]]
    return Expect(name, 1, column)


def add_unknown_column(data, batch: Batch, base) -> Expect:
    name = file_of(data.draw(st.sampled_from(NAMES), label="table"))
    column = data.draw(st.sampled_from(UNKNOWN_COLUMNS), label="column")
    at = data.draw(st.integers(0, len(batch.header(name))), label="position")
    lines = batch.lines[name]
    for i, line in enumerate(lines):
        fields = line.split(",")
        fields.insert(at, column if i == 0 else "x")
        lines[i] = ",".join(fields)
    return Expect(name, 1, column)


def duplicate_row(data, batch: Batch, base) -> Expect:
    table = TABLES[data.draw(st.sampled_from(NAMES), label="table")]
    name = file_of(table.name)
    rows = batch.lines[name][1:]
    i = data.draw(st.integers(0, len(rows) - 1), label="original")
    j = data.draw(st.integers(i + 1, len(rows)), label="copy at")
    rows.insert(j, rows[i])
    batch.lines[name][1:] = rows
    return Expect(name, j + 2, ", ".join(table.key))  # the later of the two is reported


def unknown_participant_row(data, batch: Batch, base) -> Expect:
    table = TABLES[data.draw(st.sampled_from(NAMES[1:]), label="table")]
    name = file_of(table.name)
    rows = batch.lines[name][1:]
    i = data.draw(st.integers(0, len(rows) - 1), label="model row")
    j = data.draw(st.integers(0, len(rows)), label="insert at")
    fields = rows[i].split(",")
    header = batch.header(name)
    fields[header.index("participant_id") if "participant_id" in header else 0] = UNKNOWN_PARTICIPANT
    rows.insert(j, ",".join(fields))
    batch.lines[name][1:] = rows
    return Expect(name, j + 2, "participant_id")


def truncate_mid_line(data, batch: Batch, base) -> Expect | None:
    name = file_of(data.draw(st.sampled_from(NAMES), label="table"))
    index = data_row(data, batch, name)
    line = batch.lines[name][index + 1]
    cut = data.draw(st.integers(min(1, len(line) - 1), max(0, len(line) - 1)), label="cut at")
    batch.lines[name] = batch.lines[name][: index + 1] + [line[:cut]]
    batch.no_final_newline.add(name)
    too_few_fields = line[:cut].count(",") < line.count(",")
    return Expect(name, index + 2) if too_few_fields else None


def stray_delimiter(data, batch: Batch, base) -> Expect:
    name = file_of(data.draw(st.sampled_from(NAMES), label="table"))
    index = data_row(data, batch, name)
    line = batch.lines[name][index + 1]
    # anywhere, and often at the end: the trailing comma some spreadsheet exports add
    at = data.draw(st.one_of(st.just(len(line)), st.integers(0, len(line))), label="position")
    batch.lines[name][index + 1] = line[:at] + "," + line[at:]
    return Expect(name, index + 2)


def latin1(data, batch: Batch, base) -> Expect:
    """A non-ASCII character in one cell, and the file saved as Latin-1."""
    name = file_of(data.draw(st.sampled_from(NAMES), label="table"))
    index = data_row(data, batch, name)
    fields = batch.lines[name][index + 1].split(",")
    at = data.draw(st.integers(0, len(fields) - 1), label="field")
    fields[at] += data.draw(st.sampled_from(("é", "ü", "ñ", "°")), label="char")
    batch.lines[name][index + 1] = ",".join(fields)
    batch.encoding[name] = "latin-1"
    return Expect(name, index + 2, file_level_ok=True)


def swap_names(data, batch: Batch, base) -> Expect:
    a, b = data.draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=2, unique=True), label="swap")
    fa, fb = file_of(a), file_of(b)
    batch.lines[fa], batch.lines[fb] = batch.lines[fb], batch.lines[fa]
    ea, eb = batch.encoding.pop(fa, None), batch.encoding.pop(fb, None)  # encodings and
    if eb:  # endings travel with the content
        batch.encoding[fa] = eb
    if ea:
        batch.encoding[fb] = ea
    ta, tb = fa in batch.no_final_newline, fb in batch.no_final_newline
    batch.no_final_newline -= {fa, fb}
    batch.no_final_newline |= ({fa} if tb else set()) | ({fb} if ta else set())
    return Expect(fa, 1)  # the test also expects a problem naming fb


STRUCTURAL = {
    "drop_required_column": drop_required_column,
    "add_unknown_column": add_unknown_column,
    "duplicate_row": duplicate_row,
    "unknown_participant_row": unknown_participant_row,
    "truncate_mid_line": truncate_mid_line,
    "stray_delimiter": stray_delimiter,
    "latin1": latin1,
    "swap_names": swap_names,
}


# ------------------------------------------------------------------ tests ---

@SETTINGS
@given(data=st.data())
def test_corrupted_batch_lands_whole_or_not_at_all(base, data):
    """One to three corruptions of any kind, into an empty or a non-empty store."""
    batch = fresh_batch(base)
    with_prior = data.draw(st.booleans(), label="store already holds a batch")
    for _ in range(data.draw(st.integers(1, 3), label="corruptions")):
        kind = data.draw(st.sampled_from(["cell", *STRUCTURAL]), label="kind")
        if kind == "cell":
            corrupt_cell(data, batch, base)
        else:
            STRUCTURAL[kind](data, batch, base)
    import_and_check(batch, base, with_prior)


@SETTINGS
@given(data=st.data())
def test_bad_cell_is_reported_at_its_file_row_and_column(base, data):
    batch = fresh_batch(base)
    with_prior = data.draw(st.booleans(), label="store already holds a batch")
    expect, outcome = corrupt_cell(data, batch, base)
    result = import_and_check(batch, base, with_prior)
    if outcome == "ok":
        assert result.ok, f"a still-valid file was refused: {result.problems[:5]}"
    if outcome == "bad":
        assert not result.ok
        assert expect.found_in(result.problems), (
            f"expected a problem at {expect}; got {result.problems[:10]}")


@SETTINGS
@given(data=st.data())
def test_structural_corruption_is_refused_and_located(base, data):
    batch = fresh_batch(base)
    with_prior = data.draw(st.booleans(), label="store already holds a batch")
    kind = data.draw(st.sampled_from(sorted(STRUCTURAL)), label="kind")
    before_swap = dict(batch.lines)
    expect = STRUCTURAL[kind](data, batch, base)
    result = import_and_check(batch, base, with_prior)
    if expect is None:  # e.g. a file cut inside its last field: may still be valid
        return
    assert not result.ok, f"{kind}: the corrupted batch was accepted"
    assert expect.found_in(result.problems), f"{kind}: expected a problem at {expect}; got {result.problems[:10]}"
    if kind == "swap_names":
        other = next(n for n in batch.lines if n != expect.file and batch.lines[n] is not before_swap[n])
        assert Expect(other, 1).found_in(result.problems), f"no problem names {other}: {result.problems[:10]}"


@SETTINGS
@given(data=st.data())
def test_row_numbers_stay_right_after_a_rejected_line(base, data):
    """A line DuckDB rejects (a stray comma in the middle of a line whose last field is
    filled) and a bad value in another row of the same file: both are reported at
    their own spreadsheet rows, whichever comes first."""
    batch = fresh_batch(base)
    table = TABLES[data.draw(st.sampled_from(NAMES[1:]), label="table")]  # activity files
    name = file_of(table.name)
    lines = batch.lines[name]
    filled = [i for i in range(1, len(lines)) if not lines[i].endswith(",")]
    bad_line, cell_line = data.draw(st.lists(st.sampled_from(filled), min_size=2, max_size=2, unique=True),
                                    label="lines")
    line = lines[bad_line]
    at = data.draw(st.integers(1, len(line) - 1), label="position")
    lines[bad_line] = line[:at] + "," + line[at:]
    fields = lines[cell_line].split(",")
    fields[batch.header(name).index(table.date_column)] = "2025-02-30"
    lines[cell_line] = ",".join(fields)
    result = import_and_check(batch, base, data.draw(st.booleans(), label="prior"))
    assert not result.ok
    for expect in (Expect(name, bad_line + 1), Expect(name, cell_line + 1, table.date_column)):
        assert expect.found_in(result.problems), f"expected a problem at {expect}; got {result.problems[:10]}"


# A regression case the stray-delimiter property found, pinned so it is checked on every
# run: a row with more fields than the header, where the extra fields are empty.
TRAILING_COMMA_CASES = {
    # file: (data row, what to do to it)
    "attendance.csv": (2, lambda line: line + ","),
    "checkins.csv": (2, lambda line: line + ","),
    "mentoring.csv": (2, lambda line: line + ","),
    "participants.csv": (2, lambda line: line + ",,"),
    # a comma inserted before the blank last field shifts values one column right:
    # gender,primary_substance,referral_source = male,<blank>,stimulants
    "participants.csv shifted": (2, lambda line: line.replace(",male,stimulants,", ",male,,stimulants,")),
}


@pytest.mark.parametrize("case", sorted(TRAILING_COMMA_CASES))
def test_row_with_extra_empty_fields_is_refused(base, case):
    name = case.split()[0]
    row, change = TRAILING_COMMA_CASES[case]
    batch = fresh_batch(base)
    before = batch.lines[name][row - 1]
    batch.lines[name][row - 1] = change(before)
    assert batch.lines[name][row - 1] != before  # the case still applies to the data set
    result = import_and_check(batch, base, with_prior=False)
    assert not result.ok, f"{name} row {row} {batch.lines[name][row - 1]!r} was accepted"
    assert Expect(name, row).found_in(result.problems), result.problems[:10]
