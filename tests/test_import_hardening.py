"""Defects a new user hit and hostile input (issue 11, items 7 and 8): each is refused
quickly with a clear message, and the store is left as it was."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook
from streamlit.testing.v1 import AppTest

from analytics.ingest import importer
from analytics.ingest.bootstrap import ensure_store
from analytics.ingest.problems import MAX_EXAMPLES
from analytics.safe_files import FORMULA_PREFIXES
from analytics.store.connection import Store
from conftest import TODAY, assert_same, snapshot

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "dashboard" / "app.py")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


@pytest.fixture
def loaded(store: Store, valid_dir: Path) -> Store:
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    return store


def edit(folder: Path, name: str, fn) -> None:
    path = folder / f"{name}.csv"
    fn(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


def refused(store: Store, paths: list[Path], seconds: float = 20.0) -> list[importer.Problem]:
    """Import `paths`, which must be refused within `seconds` and leave the store unchanged."""
    before = snapshot(store)
    start = time.perf_counter()
    result = importer.import_files(store, paths, today=TODAY)
    assert time.perf_counter() - start < seconds
    assert not result.ok
    assert_same(before, snapshot(store))
    return result.problems


# --- item 7: defects -------------------------------------------------------------------

def us_dates(folder: Path, name: str, column: str, fmt: str) -> int:
    frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
    frame[column] = pd.to_datetime(frame[column]).dt.strftime(fmt)
    frame.to_csv(folder / f"{name}.csv", index=False)
    return len(frame)


def test_month_first_dates_give_one_clear_message_and_no_false_duplicates(store: Store, valid_dir: Path):
    n = us_dates(valid_dir, "attendance", "attended_on", "%m/%d/%Y")
    problems = refused(store, [valid_dir])
    assert not [p for p in problems if "duplicate" in p.problem]
    dates = [p for p in problems if p.column == "attended_on"]
    listed = [p for p in dates if p.row is not None]
    assert len(listed) == MAX_EXAMPLES
    assert all("MM/DD/YYYY (month first)" in p.problem and "YYYY-MM-DD" in p.problem for p in listed)
    assert any(f"{n - MAX_EXAMPLES} more rows" in p.problem for p in dates if p.row is None)


def test_day_first_dates_are_named_so(store: Store, valid_dir: Path):
    us_dates(valid_dir, "checkins", "checked_in_on", "%d/%m/%Y")
    problems = refused(store, [valid_dir])
    assert not [p for p in problems if "duplicate" in p.problem]
    assert any("DD/MM/YYYY (day first)" in p.problem for p in problems if p.column == "checked_in_on")


def test_a_real_duplicate_is_still_found_beside_unparsed_dates(store: Store, valid_dir: Path):
    def fn(f: pd.DataFrame) -> pd.DataFrame:
        f = pd.concat([f.iloc[:3], f.iloc[[1]], f.iloc[3:]], ignore_index=True)  # row 5 repeats row 3
        f.loc[6:, "attended_on"] = "05/31/2026"
        return f
    edit(valid_dir, "attendance", fn)
    dups = [p for p in refused(store, [valid_dir]) if "duplicate key" in p.problem]
    assert [(p.file, p.row) for p in dups] == [("attendance.csv", 5)]


def test_dry_run_does_not_say_writing(tmp_path: Path, valid_dir: Path):
    out = run_cli("import", str(valid_dir), "--db", str(tmp_path / "d.duckdb"), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "writing" not in (out.stdout + out.stderr).lower()
    assert "Dry run" in out.stdout
    real = run_cli("import", str(valid_dir), "--db", str(tmp_path / "r.duckdb"))
    assert "writing" in real.stderr + real.stdout  # the real import still says it


def test_cli_report_writes_formulas_as_text(tmp_path: Path, valid_dir: Path):
    formula = '=HYPERLINK("http://example.com","click")'
    edit(valid_dir, "participants", lambda f: f.assign(
        participant_id=f.participant_id.where(f.index != 0, formula)))
    report = tmp_path / "problems.csv"
    out = run_cli("import", str(valid_dir), "--db", str(tmp_path / "x.duckdb"), "--report", str(report))
    assert out.returncode == 1
    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    values = frame.value.tolist()
    assert "'" + formula in values and formula not in values
    assert not any(str(v).startswith(FORMULA_PREFIXES) for col in frame for v in frame[col])


def test_problem_report_neutralises_every_formula_prefix():
    problems = [importer.Problem("a.csv", 2, "site", p + "1+1", "x") for p in FORMULA_PREFIXES]
    rows = pd.read_csv(io.StringIO(importer.problems_csv(problems)), dtype=str, keep_default_na=False)
    assert rows.value.tolist() == ["'" + p + "1+1" for p in FORMULA_PREFIXES]


def test_no_product_writer_bypasses_the_safe_writer():
    """Every CSV/XLSX the product writes goes through analytics/safe_files.py (directly or via
    publish/spreadsheets.py); the only other writers are named here with the reason."""
    allowed = {
        "analytics/publish/spreadsheets.py",  # the safe writer for tables (neutralises first)
        "analytics/safe_files.py",  # the neutralising CSV writer itself
        "analytics/ingest/files.py",  # a workbook copied to CSV for DuckDB to read: input, not output
        "analytics/analyses/outreach.py",  # the outreach list: neutralise_frame(...).to_csv
    }
    found = set()
    for path in list((REPO / "analytics").rglob("*.py")) + list((REPO / "dashboard").rglob("*.py")):
        text = path.read_text()
        if any(w in text for w in (".to_csv(", ".to_excel(", "csv.writer(", "ExcelWriter(")):
            found.add(str(path.relative_to(REPO)))
    assert found <= allowed, found - allowed


# --- item 8: hostile input -------------------------------------------------------------

def workbook_with_sheet(path: Path, sheet_xml: bytes, shared: bytes | None = None) -> Path:
    """A valid small workbook whose first sheet (and shared strings) are replaced."""
    wb = Workbook()
    wb.active.append(["participant_id", "attended_on", "meeting_type", "modality", "minutes"])
    buffer = io.BytesIO()
    wb.save(buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml
            out.writestr(info.filename, data)
        if shared is not None:
            out.writestr("xl/sharedStrings.xml", shared)
    return path


SHEET = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
         b'spreadsheetml/2006/main"><sheetData>%s</sheetData></worksheet>')


def test_workbook_of_a_million_empty_rows_is_refused_quickly(loaded: Store, tmp_path: Path):
    rows = b"".join(b'<row r="%d"/>' % i for i in range(1, 1_000_001))
    path = workbook_with_sheet(tmp_path / "attendance.xlsx", SHEET % rows)
    problems = refused(loaded, [path], seconds=10)
    assert [p.file for p in problems] == ["attendance.xlsx"]
    assert "1,000,000 rows" in problems[0].problem and "CSV" in problems[0].problem


def test_workbook_cell_of_40_million_characters_is_refused_for_its_size(loaded: Store, tmp_path: Path):
    shared = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
              b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>' + b"x" * 40_000_000 + b"</t></si></sst>")
    sheet = SHEET % b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    path = workbook_with_sheet(tmp_path / "attendance.xlsx", sheet, shared)
    assert path.stat().st_size < 200_000
    problems = refused(loaded, [path], seconds=10)
    assert len(problems) == 1 and "more than 32,767 characters" in problems[0].problem


def test_csv_with_a_nul_byte_past_the_first_64_kb_is_refused(loaded: Store, valid_dir: Path):
    path = valid_dir / "participants.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = pd.concat([frame] * 40, ignore_index=True)
    frame["participant_id"] = [f"P-{i:06d}" for i in range(len(frame))]
    frame.loc[len(frame) - 1, "site"] = "East\x00gate"
    frame.to_csv(path, index=False)
    assert path.read_bytes().index(b"\x00") > 65536
    problems = refused(loaded, [path])
    assert any("binary data" in p.problem and f"line {len(frame) + 1:,}" in p.problem for p in problems)


@pytest.mark.parametrize("column, value, words", [
    ("program", "P" * 1_000_000, "too long"),
    ("site", "East\u202egate", "control character"),
    ("site", "East\x07gate", "control character"),
    ("site", "East\ngate", "control character"),
    ("referral_source", "self\tclinic", "control character"),
])
def test_text_fields_are_bounded_and_free_of_control_characters(loaded: Store, valid_dir: Path,
                                                                 column: str, value: str, words: str):
    edit(valid_dir, "participants", lambda f: f.assign(participant_id=f.participant_id + "X"))
    edit(valid_dir, "participants", lambda f: f.assign(**{column: f[column].where(f.index != 2, value)}))
    problems = refused(loaded, [valid_dir / "participants.csv"])
    hits = [p for p in problems if p.row == 4 and p.column == column and words in p.problem]
    assert len(hits) == 1, problems
    assert len(hits[0].value) < 100 and not any(ch in hits[0].value for ch in "\u202e\x07\n\t")


def test_text_at_the_limit_imports(store: Store, valid_dir: Path):
    edit(valid_dir, "participants", lambda f: f.assign(site="S" * 200, program="Prog\u00e9 \u0645"))
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    assert store.scalar("SELECT max(length(site)) FROM participants") == 200


def test_header_of_100k_columns_gives_one_problem(loaded: Store, valid_dir: Path):
    path = valid_dir / "mentoring.csv"
    header = "participant_id,mentor_id,met_on,minutes,modality," + ",".join(f"c{i}" for i in range(100_000))
    path.write_text(header + "\n")
    problems = refused(loaded, [path])
    assert len(problems) == 1 and "100,005 columns" in problems[0].problem


def test_many_unknown_columns_are_capped(loaded: Store, valid_dir: Path):
    path = valid_dir / "mentoring.csv"
    path.write_text("participant_id,mentor_id,met_on,minutes,modality," + ",".join(f"c{i}" for i in range(40))
                    + "\n")
    problems = refused(loaded, [path])
    unknown = [p for p in problems if "unknown column" in p.problem]
    assert len(unknown) == MAX_EXAMPLES + 1
    assert [p.row for p in unknown if "20 more times: unknown column" in p.problem] == [None]


def test_data_page_refuses_a_file_name_over_255_characters(tmp_path: Path, monkeypatch):
    db = ensure_store(tmp_path / "s.duckdb")
    monkeypatch.setenv("OUTCOMES_DB", str(db))
    before = Store.open(db).scalar("SELECT count(*) FROM import_batches")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/data.py").run()
    name = "attendance_" + "x" * 300 + ".csv"
    at.file_uploader[0].set_value([(name, b"participant_id,attended_on,meeting_type,modality\n", "text/csv")]).run()
    at.button(key="import").click().run()
    assert not at.exception
    assert any("Nothing was imported" in e.value for e in at.error)
    assert any("rename it to at most 255" in str(v) for v in at.dataframe[0].value.problem)
    assert Store.open(db).scalar("SELECT count(*) FROM import_batches") == before


# --- the fingerprint pass counts lines with trailing commas as DuckDB's pass does ----------

@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])
def test_fingerprint_counts_trailing_comma_lines_like_the_sql_pass(tmp_path: Path, monkeypatch,
                                                                  newline: str, chunk: int):
    from analytics.ingest import files
    from analytics.store.queries import ingest as q

    monkeypatch.setattr(files, "_CHUNK", chunk)  # lines split across chunks
    lines = ["a,b,c", "1,2,3", "1,2,", "1,2,3,", "1,2,3,,", ",,,,", "1,,", "4,5,6,,,", "x,y,z"]
    path = tmp_path / "t.csv"
    path.write_bytes(newline.join(lines).encode())  # no newline after the last line
    print_ = files.fingerprint(path)
    with Store.open(memory=True) as store:
        expected = q.count_long_lines(store.session(), str(path), 3)
    assert expected == 4  # 1,2,3, / 1,2,3,, / ,,,, / 4,5,6,,,
    assert print_.long_lines(3) == expected
    quoted = tmp_path / "q.csv"
    quoted.write_text('a,b,c\n"1,2",3,\n')
    assert files.fingerprint(quoted).long_lines(3) is None  # quotes: DuckDB counts
