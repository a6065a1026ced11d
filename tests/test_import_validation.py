"""Each class of bad input is refused, named by file/row/column, and leaves the store as it was."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analytics.ingest import importer
from analytics.store.connection import Store
from conftest import TODAY, assert_same, snapshot


def edit_csv(folder: Path, name: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = folder / f"{name}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(frame).to_csv(path, index=False)


def set_cell(name: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    """Set one cell; `row` is the spreadsheet row (header = 1)."""
    def mutate(folder: Path) -> None:
        def fn(f: pd.DataFrame) -> pd.DataFrame:
            f.loc[row - 2, column] = value
            return f
        edit_csv(folder, name, fn)
    return mutate


def first_enrolled(folder: Path) -> tuple[str, str]:
    p = pd.read_csv(folder / "participants.csv", dtype=str)
    return p.loc[0, "participant_id"], p.loc[0, "enrolled_on"]


def activity_before_enrollment(folder: Path) -> None:
    pid, enrolled = first_enrolled(folder)
    day = (pd.Timestamp(enrolled) - pd.Timedelta(days=3)).date().isoformat()
    edit_csv(folder, "checkins", lambda f: pd.concat(
        [f.iloc[:1].assign(participant_id=pid, checked_in_on=day), f.iloc[1:]], ignore_index=True))


def exit_before_enrollment(folder: Path) -> None:
    def fn(f: pd.DataFrame) -> pd.DataFrame:
        day = (pd.Timestamp(f.loc[0, "enrolled_on"]) - pd.Timedelta(days=1)).date().isoformat()
        f.loc[0, ["exited_on", "exit_reason"]] = [day, "completed"]
        return f
    edit_csv(folder, "participants", fn)


def duplicate_row(name: str) -> Callable[[Path], None]:
    return lambda folder: edit_csv(folder, name, lambda f: pd.concat([f.iloc[:3], f.iloc[[1]], f.iloc[3:]],
                                                                     ignore_index=True))


def rename_column(name: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda folder: edit_csv(folder, name, lambda f: f.rename(columns={old: new}))


def add_column(name: str, column: str) -> Callable[[Path], None]:
    return lambda folder: edit_csv(folder, name, lambda f: f.assign(**{column: "x"}))


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def reencode(name: str, encoding: str, extra: str = "") -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        lines[1] = lines[1].replace(",", f",{extra}", 1) if extra else lines[1]
        path.write_bytes("".join(lines).encode(encoding))
    return mutate


def semicolons(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / name
        path.write_text(path.read_text().replace(",", ";"))
    return mutate


def swap_names(a: str, b: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        (folder / a).rename(folder / "tmp.csv")
        (folder / b).rename(folder / a)
        (folder / "tmp.csv").rename(folder / b)
    return mutate


def future_activity(folder: Path) -> None:
    set_cell("attendance", 2, "attended_on", "2027-01-04")(folder)


# (id, mutation, expected file, row, column, words in the problem)
CASES = [
    ("missing required column", lambda d: edit_csv(d, "checkins", lambda f: f.drop(columns=["used"])),
     "checkins.csv", 1, "used", "required column is missing"),
    ("unknown column", add_column("attendance", "venue"), "attendance.csv", 1, "venue", "unknown column"),
    ("identifier column", add_column("participants", "email"), "participants.csv", 1, "email",
     "de-identified"),
    ("identifier column dob", rename_column("participants", "referral_source", "Date of Birth"),
     "participants.csv", 1, "date_of_birth", "de-identified"),
    ("unparseable date", set_cell("checkins", 3, "checked_in_on", "03/02/2025"), "checkins.csv", 3,
     "checked_in_on", "not a valid date"),
    ("impossible date", set_cell("attendance", 4, "attended_on", "2025-02-30"), "attendance.csv", 4,
     "attended_on", "not a valid date"),
    ("ancient date", set_cell("participants", 2, "sobriety_start", "1850-01-01"), "participants.csv", 2,
     "sobriety_start", "impossible date"),
    ("value outside set", set_cell("attendance", 5, "meeting_type", "yoga"), "attendance.csv", 5,
     "meeting_type", "not an allowed value"),
    ("exit reason outside set", set_cell("participants", 3, "exit_reason", "quit"), "participants.csv", 3,
     "exit_reason", "not an allowed value"),
    ("value out of range", set_cell("checkins", 2, "craving", "11"), "checkins.csv", 2, "craving",
     "out of range"),
    ("mood out of range", set_cell("checkins", 2, "mood", "0"), "checkins.csv", 2, "mood", "out of range"),
    ("minutes not positive", set_cell("mentoring", 2, "minutes", "-5"), "mentoring.csv", 2, "minutes",
     "out of range"),
    ("not a number", set_cell("mentoring", 3, "minutes", "forty"), "mentoring.csv", 3, "minutes",
     "not a whole number"),
    ("not a boolean", set_cell("checkins", 4, "used", "maybe"), "checkins.csv", 4, "used", "not true or false"),
    ("required value missing", set_cell("participants", 4, "program", ""), "participants.csv", 4, "program",
     "required value is missing"),
    ("name as participant id", set_cell("participants", 2, "participant_id", "Jane Doe"), "participants.csv",
     2, "participant_id", "not a pseudonymous code"),
    ("duplicate key in file", duplicate_row("attendance"), "attendance.csv", 5, None, "duplicate key"),
    ("duplicate participant", duplicate_row("participants"), "participants.csv", 5, "participant_id",
     "duplicate key"),
    ("unknown participant", set_cell("mentoring", 2, "participant_id", "P-NOBODY"), "mentoring.csv", 2,
     "participant_id", "unknown participant"),
    ("activity before enrollment", activity_before_enrollment, "checkins.csv", 2, "checked_in_on",
     "before the participant's enrollment"),
    ("activity in the future", future_activity, "attendance.csv", 2, "attended_on", "in the future"),
    ("exit before enrollment", exit_before_enrollment, "participants.csv", 2, "exited_on",
     "exit is before enrollment"),
    ("exit without reason", lambda d: edit_csv(d, "participants", _exit_without_reason), "participants.csv",
     2, "exit_reason", "exit_reason is required"),
    ("empty file", write_bytes("mentoring.csv", b""), "mentoring.csv", None, None, "empty"),
    ("header only", write_bytes("mentoring.csv", b"participant_id,mentor_id,met_on,minutes,modality\n"),
     "mentoring.csv", None, None, "no data rows"),
    ("latin-1 encoding", reencode("participants.csv", "latin-1", "Jos\u00e9"), "participants.csv", None, None,
     "not UTF-8"),
    ("utf-16 encoding", reencode("checkins.csv", "utf-16"), "checkins.csv", None, None, "UTF-16"),
    ("semicolon delimiter", semicolons("attendance.csv"), "attendance.csv", 1, None, "semicolons"),
    ("wrong number of fields", lambda d: (d / "checkins.csv").write_text(
        (d / "checkins.csv").read_text().replace("\n", ",extra\n", 2).replace(",extra\n", "\n", 1)),
     "checkins.csv", 2, None, "wrong number of fields"),
    ("files swapped", swap_names("attendance.csv", "checkins.csv"), "attendance.csv", 1, None,
     "columns of checkins"),
    ("workbook named csv", lambda d: _xlsx_as(d, "mentoring.csv"), "mentoring.csv", None, None,
     "Excel workbook"),
    ("text named xlsx", lambda d: shutil.copy(d / "mentoring.csv", d / "mentoring_b.xlsx"),
     "mentoring_b.xlsx", None, None, "not an Excel .xlsx workbook"),
    ("unrecognised file name", lambda d: shutil.copy(d / "mentoring.csv", d / "sessions.csv"), "sessions.csv",
     None, None, "cannot tell which table"),
]


def _exit_without_reason(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[0, ["exited_on", "exit_reason"]] = [f.loc[0, "enrolled_on"], ""]
    return f


def _xlsx_as(folder: Path, name: str) -> None:
    frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
    frame.to_excel(folder / "tmp.xlsx", index=False)
    (folder / "tmp.xlsx").rename(folder / name)


@pytest.fixture
def loaded(store: Store, valid_dir: Path) -> Store:
    """A store holding the valid batch, so refusals are checked against non-empty tables."""
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    return store


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_store_unchanged(case, loaded: Store, valid_dir: Path, tmp_path: Path):
    name, mutate, file, row, column, words = case
    bad = tmp_path / "bad"
    shutil.copytree(valid_dir, bad)
    # new participants too, so the batch would add rows if it landed
    edit_csv(bad, "participants", lambda f: f.assign(participant_id=f.participant_id + "X"))
    for activity in ("attendance", "checkins", "mentoring"):
        edit_csv(bad, activity, lambda f: f.assign(participant_id=f.participant_id + "X"))
    mutate(bad)
    before = snapshot(loaded)
    result = importer.import_files(loaded, [bad], today=TODAY)
    assert not result.ok
    assert_same(before, snapshot(loaded))
    matches = [p for p in result.problems if p.file == file and p.row == row
               and (column is None or p.column == column) and words in p.problem]
    assert matches, "\n".join(map(str, result.problems))


def test_every_problem_reported_at_once(store: Store, valid_dir: Path):
    set_cell("checkins", 2, "craving", "12")(valid_dir)
    set_cell("checkins", 5, "used", "perhaps")(valid_dir)
    set_cell("attendance", 3, "modality", "telepathy")(valid_dir)
    add_column("participants", "phone")(valid_dir)
    result = importer.import_files(store, [valid_dir], today=TODAY)
    found = {(p.file, p.row, p.column) for p in result.problems}
    assert {("checkins.csv", 2, "craving"), ("checkins.csv", 5, "used"),
            ("attendance.csv", 3, "modality"), ("participants.csv", 1, "phone")} <= found
    assert store.scalar("SELECT count(*) FROM participants") == 0


def test_a_row_with_an_unparseable_value_still_gets_its_other_problems(store: Store, valid_dir: Path):
    set_cell("checkins", 3, "checked_in_on", "yesterday")(valid_dir)
    set_cell("checkins", 3, "mood", "9")(valid_dir)
    result = importer.import_files(store, [valid_dir], today=TODAY)
    found = {(p.row, p.column) for p in result.problems if p.file == "checkins.csv"}
    assert {(3, "checked_in_on"), (3, "mood")} <= found


def test_row_numbers_after_a_rejected_row(store: Store, valid_dir: Path):
    """A row DuckDB cannot split does not shift the row numbers of later problems."""
    set_cell("attendance", 6, "meeting_type", "bingo")(valid_dir)
    path = valid_dir / "attendance.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + ",surplus\n"  # row 3: too many fields
    path.write_text("".join(lines))
    result = importer.import_files(store, [valid_dir], today=TODAY)
    found = {(p.row, p.column) for p in result.problems if p.file == "attendance.csv"}
    assert (3, None) in found and (6, "meeting_type") in found


def test_many_bad_rows_are_counted_not_all_listed(store: Store, valid_dir: Path):
    edit_csv(valid_dir, "attendance", lambda f: f.assign(meeting_type="bowling"))
    result = importer.import_files(store, [valid_dir], today=TODAY)
    listed = [p for p in result.problems if p.column == "meeting_type" and p.row is not None]
    assert len(listed) == importer.MAX_EXAMPLES
    more = [p for p in result.problems if p.row is None and "more rows" in p.problem]
    n = len(pd.read_csv(valid_dir / "attendance.csv"))
    assert more and f"{n - importer.MAX_EXAMPLES} more" in more[0].problem


def test_change_of_enrollment_that_strands_stored_activity_is_refused(loaded: Store, valid_dir: Path):
    pid = loaded.scalar("SELECT participant_id FROM attendance ORDER BY attended_on LIMIT 1")
    first = loaded.scalar("SELECT min(attended_on) FROM attendance WHERE participant_id = ?", [pid])
    later = (pd.Timestamp(first) + pd.Timedelta(days=1)).date().isoformat()
    for name in ("attendance", "checkins", "mentoring"):
        (valid_dir / f"{name}.csv").unlink()
    edit_csv(valid_dir, "participants", lambda f: f.assign(
        enrolled_on=f.enrolled_on.where(f.participant_id != pid, later)))
    before = snapshot(loaded)
    result = importer.import_files(loaded, [valid_dir], today=TODAY)
    assert any(p.value == pid and "before the new enrolled_on" in p.problem for p in result.problems)
    assert_same(before, snapshot(loaded))


def test_report_csv_has_one_line_per_problem(store: Store, valid_dir: Path):
    set_cell("checkins", 2, "craving", "12")(valid_dir)
    result = importer.import_files(store, [valid_dir], today=TODAY)
    text = importer.problems_csv(result.problems)
    lines = text.splitlines()
    assert lines[0] == "file,row,column,value,problem"
    assert lines[1].startswith("checkins.csv,2,craving,12,out of range")
    assert len(lines) == len(result.problems) + 1


def test_xlsx_files_load_like_csv(tmp_path: Path, valid_dir: Path, small_frames):
    """Same data as CSV and as XLSX (with real date cells) gives the same store."""
    xdir = tmp_path / "xlsx"
    xdir.mkdir()
    for name, frame in small_frames.items():
        out = frame.copy()
        for col in out.columns:
            if col.endswith(("_on", "_start")):
                out[col] = pd.to_datetime(out[col])
        out.to_excel(xdir / f"{name}.xlsx", index=False)
    a = Store.open(tmp_path / "a.duckdb")
    b = Store.open(tmp_path / "b.duckdb")
    assert importer.import_files(a, [valid_dir], today=TODAY).ok
    result = importer.import_files(b, [xdir], today=TODAY)
    assert result.ok, result.problems
    sa, sb = snapshot(a), snapshot(b)
    for name in ("participants", "attendance", "checkins", "mentoring"):
        pd.testing.assert_frame_equal(sa[name], sb[name], check_dtype=False)


def test_xlsx_problem_rows_are_sheet_rows(store: Store, tmp_path: Path, small_frames):
    xdir = tmp_path / "x"
    xdir.mkdir()
    for name, frame in small_frames.items():
        frame.to_excel(xdir / f"{name}.xlsx", index=False)
    book = openpyxl.load_workbook(xdir / "checkins.xlsx")
    book.active["D4"] = 42  # craving, sheet row 4
    book.save(xdir / "checkins.xlsx")
    result = importer.import_files(store, [xdir], today=TODAY)
    assert [(p.file, p.row, p.column) for p in result.problems] == [("checkins.xlsx", 4, "craving")]


def test_missing_path_is_a_problem(store: Store, tmp_path: Path):
    result = importer.import_files(store, [tmp_path / "nowhere"], today=TODAY)
    assert not result.ok and "no such file" in result.problems[0].problem
