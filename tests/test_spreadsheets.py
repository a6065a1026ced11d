"""CSV/XLSX exports: formula-looking text is neutralised, numbers and dates keep their types."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analytics.publish.spreadsheets import (
    ABOUT_SHEET,
    FORMULA_PREFIXES,
    csv_bytes,
    neutralise,
    neutralise_frame,
    sheet_name,
    xlsx_bytes,
)

DANGEROUS = ['=HYPERLINK("http://evil.example","click")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1+1"]
PLAIN = ["Eastside", "a=b", "1-2", "", "Peer group (online)", "'quoted"]


def _frame() -> pd.DataFrame:
    """A table whose column names, index labels and text cells all include formula-looking text."""
    return pd.DataFrame(
        {"site": DANGEROUS, "=cmd|' /C calc'!A0": range(7),
         "rate": [-0.5, 1.25, np.nan, 0.0, -3.0, 2.0, 0.1],
         "when": pd.to_datetime(["2025-01-31"] * 7)},
        index=pd.Index(["-idx", "+idx", "ok", "@idx", "=idx", "x", "y"], name="=group"))


def _read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("text", DANGEROUS)
def test_neutralise_dangerous_text(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", [*PLAIN, -5, -2.5, 0, None, np.nan, dt.date(2025, 1, 1)])
def test_neutralise_leaves_plain_text_and_non_text_alone(value: object) -> None:
    assert neutralise(value) is value


def test_neutralise_frame_covers_cells_column_names_and_index_labels() -> None:
    df = _frame()
    out = neutralise_frame(df)
    assert out["site"].tolist() == ["'" + s for s in DANGEROUS]
    assert "'=cmd|' /C calc'!A0" in out.columns
    assert out.index.tolist() == ["'-idx", "'+idx", "ok", "'@idx", "'=idx", "x", "y"]
    assert out.index.name == "'=group"
    assert out["rate"].tolist()[:2] == [-0.5, 1.25]  # numbers are not text
    assert df["site"].tolist() == DANGEROUS  # input untouched


def test_csv_neutralises_and_keeps_numbers_with_notes_after_a_blank_line() -> None:
    notes = ["Method: counts of 1 to 10 are shown as <11.", "=HYPERLINK(1)", "Generated 2026-11-27"]
    rows = _read_csv(csv_bytes(_frame(), notes=notes, index=True))
    assert rows[0] == ["'=group", "site", "'=cmd|' /C calc'!A0", "rate", "when"]
    body = rows[1:8]
    assert [r[0] for r in body] == ["'-idx", "'+idx", "ok", "'@idx", "'=idx", "x", "y"]
    assert [r[1] for r in body] == ["'" + s for s in DANGEROUS]
    assert [r[2] for r in body] == [str(i) for i in range(7)]
    assert [r[3] for r in body] == ["-0.5", "1.25", "", "0.0", "-3.0", "2.0", "0.1"]
    assert body[0][4] == "2025-01-31"
    assert rows[8] == []
    assert rows[9:] == [[notes[0]], ["'=HYPERLINK(1)"], [notes[2]]]
    text_cells = [cell for row in rows for k, cell in enumerate(row) if k != 3]  # column 3 holds numbers
    assert not any(cell.startswith(FORMULA_PREFIXES) for cell in text_cells)


def test_csv_without_index_or_notes() -> None:
    rows = _read_csv(csv_bytes(pd.DataFrame({"name": PLAIN, "n": range(len(PLAIN))})))
    assert rows == [["name", "n"], *([s, str(i)] for i, s in enumerate(PLAIN))]


def test_xlsx_neutralises_text_keeps_numbers_and_dates_and_writes_about() -> None:
    notes = ["Small numbers are suppressed.", "-- filters: site = all", "Generated 2026-11-27"]
    data = xlsx_bytes({"Retention": _frame(), "Plain": pd.DataFrame({"name": PLAIN})}, notes=notes, index=True)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Retention", "Plain", ABOUT_SHEET]
    ws = wb["Retention"]
    header = [c.value for c in ws[1]]
    assert header == ["'=group", "site", "'=cmd|' /C calc'!A0", "rate", "when"]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    for row in ws.iter_rows(min_row=1, max_row=8):
        for cell in row:
            if isinstance(cell.value, str):
                assert cell.data_type == "s"
                assert not cell.value.startswith(FORMULA_PREFIXES)
    assert [ws.cell(i, 2).value for i in range(2, 9)] == ["'" + s for s in DANGEROUS]
    assert [ws.cell(i, 1).value for i in range(2, 9)] == ["'-idx", "'+idx", "ok", "'@idx", "'=idx", "x", "y"]
    numbers = [ws.cell(i, 3) for i in range(2, 9)]
    assert [c.value for c in numbers] == list(range(7))
    assert all(c.data_type == "n" for c in numbers)
    rates = [ws.cell(i, 4) for i in range(2, 9)]
    assert [c.value for c in rates] == [-0.5, 1.25, None, 0, -3, 2, 0.1]
    assert rates[0].data_type == "n"
    assert rates[4].data_type == "n"  # a negative number is a number, not neutralised
    when = ws.cell(2, 5)
    assert when.is_date
    assert when.value == dt.datetime(2025, 1, 31)
    assert [c.value for c in wb["Plain"]["A"]] == [None, *range(len(PLAIN))]  # unnamed index: blank header
    assert [c.value for c in wb["Plain"]["B"]] == ["name", *[s or None for s in PLAIN]]
    about = wb[ABOUT_SHEET]
    assert [c.value for c in about["A"]] == [notes[0], "'-- filters: site = all", notes[2]]
    assert all(c.data_type == "s" for c in about["A"])


def test_xlsx_text_minus_five_is_neutralised_but_the_number_is_not() -> None:
    data = xlsx_bytes({"t": pd.DataFrame({"v": ["-5", -5, "<11", "*"]}, dtype=object)})
    ws = openpyxl.load_workbook(io.BytesIO(data))["t"]
    cells = [ws.cell(i, 1) for i in range(2, 6)]
    assert [c.value for c in cells] == ["'-5", -5, "<11", "*"]
    assert [c.data_type for c in cells] == ["s", "n", "s", "s"]


def test_xlsx_sheet_names_follow_excel_rules() -> None:
    frames = {"Cohorts: 2025/Q1 [retention]?": pd.DataFrame({"a": [1]}),
              "x" * 40: pd.DataFrame({"a": [2]}),
              "X" * 40: pd.DataFrame({"a": [3]}),
              "about": pd.DataFrame({"a": [4]}),
              "'quoted'": pd.DataFrame({"a": [5]})}
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(frames)))
    names = wb.sheetnames
    assert names[0] == "Cohorts_ 2025_Q1 _retention__"
    assert names[1] == "x" * 31
    assert names[2] == "X" * 27 + " (2)"
    assert names[3] == "about (2)"
    assert names[4] == "quoted"
    assert names[-1] == ABOUT_SHEET
    assert all(len(n) <= 31 for n in names)
    assert sheet_name("", set()) == "Sheet"
    assert sheet_name("History", set()) == "History_"
