"""Safe CSV and XLSX writers for exported tables.

Exported tables carry text that came from imported files (program and site names,
referral sources). A spreadsheet program treats a cell starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return as a formula, so a crafted value could run a formula on the
grant writer's machine (CSV injection). Following the OWASP advice, every text cell, column
name and index label starting with one of those characters gets a leading ``'``, and XLSX
text cells are also stored as strings, so they are never evaluated. Numbers (including
negative ones) stay numbers.

Notes (method statement, definitions, filters, generated date) go after the table in a
CSV, separated by one blank line (Excel shows ``#`` comment lines as data anyway), and on
a final "About" sheet in an XLSX workbook.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analytics.safe_files import FORMULA_PREFIXES, neutralise, neutralise_frame

__all__ = ["ABOUT_SHEET", "FORMULA_PREFIXES", "csv_bytes", "neutralise", "neutralise_frame", "sheet_name",
           "xlsx_bytes"]

ABOUT_SHEET = "About"
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_MAX = 31
_WIDTH_MIN, _WIDTH_MAX = 8, 60


def csv_bytes(df: pd.DataFrame, *, notes: Sequence[str] = (), index: bool = False) -> bytes:
    """The table as UTF-8 CSV with a BOM (so Excel reads the encoding), notes after one blank line."""
    buffer = io.StringIO()
    _flat(df, index).to_csv(buffer, index=False, lineterminator="\r\n")
    if notes:
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([])
        writer.writerows([neutralise(str(note))] for note in notes)
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(sheets: Mapping[str, pd.DataFrame], *, notes: Sequence[str] = (), index: bool = False) -> bytes:
    """An XLSX workbook: one sheet per table, then an "About" sheet with the notes.

    Text is neutralised and stored as strings, numbers as numbers, dates as dates and
    blanks (NaN) as empty cells; the header row is bold and frozen.
    """
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = {ABOUT_SHEET.lower()}
    for name, df in sheets.items():
        title = sheet_name(name, used)
        used.add(title.lower())
        _write_table(wb.create_sheet(title), _flat(df, index))
    _write_notes(wb.create_sheet(ABOUT_SHEET), notes)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def sheet_name(name: object, used: AbstractSet[str] = frozenset()) -> str:
    """A valid, unused Excel sheet name: no ``[]:*?/\\``, no leading/trailing ``'``, <= 31 chars.

    ``used`` holds lower-cased names already taken (Excel compares names case-insensitively);
    a clash gets a " (2)", " (3)"... suffix. "History" is reserved by Excel.
    """
    base = _SHEET_FORBIDDEN.sub("_", ILLEGAL_CHARACTERS_RE.sub("", str(name))).strip().strip("'").strip()
    base = base or "Sheet"
    if base.lower() == "history":
        base = "History_"
    candidate, k = base[:_SHEET_MAX], 1
    while candidate.lower() in used:
        k += 1
        suffix = f" ({k})"
        candidate = base[:_SHEET_MAX - len(suffix)].rstrip().rstrip("'") + suffix
    return candidate


# --- helpers ---------------------------------------------------------------------------


def _flat(df: pd.DataFrame, index: bool) -> pd.DataFrame:
    """The table with one header row (index as leading columns if asked), neutralised."""
    out = neutralise_frame(df)
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [neutralise(" / ".join(str(level) for level in col)) for col in out.columns]
    if not index:
        return out.reset_index(drop=True)
    names = [n if n is not None else ("" if out.index.nlevels == 1 else f"level_{i}")
             for i, n in enumerate(out.index.names)]
    return out.rename_axis(names).reset_index()


def _cell_value(value: object) -> object:
    """A value openpyxl writes faithfully: None for blanks, native numbers and dates, safe text."""
    if value is None or value is pd.NaT or (not isinstance(value, str) and _is_missing(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else _text(str(number))
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return _date(value)
    return _text(str(value))


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays, lists: not a single missing value
        return False


def _date(value: dt.date) -> dt.date | dt.datetime:
    """Excel has no time zones; a midnight timestamp is a plain date."""
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)  # keep the wall-clock time as shown in the app
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        return value.date() if value.time() == dt.time(0) else value
    return value


def _text(value: str) -> str:
    return str(neutralise(ILLEGAL_CHARACTERS_RE.sub("", value)))


def _put(ws: Worksheet, row: int, col: int, value: object) -> None:
    """Write one cell; text is forced to data type "s" so Excel never evaluates it."""
    value = _cell_value(value)
    if value is None or value == "":
        return
    cell = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    elif isinstance(value, dt.datetime):
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(value, dt.date):
        cell.number_format = "yyyy-mm-dd"


def _write_table(ws: Worksheet, df: pd.DataFrame) -> None:
    bold = Font(bold=True)
    for j, name in enumerate(df.columns, start=1):
        _put(ws, 1, j, name)
        ws.cell(row=1, column=j).font = bold
    for i, row in enumerate(df.itertuples(index=False, name=None), start=2):
        for j, value in enumerate(row, start=1):
            _put(ws, i, j, value)
    for j, name in enumerate(df.columns, start=1):
        sample = [name, *df.iloc[:200, j - 1]]
        width = max((len(_shown(v)) for v in sample), default=0) + 2
        ws.column_dimensions[get_column_letter(j)].width = min(max(width, _WIDTH_MIN), _WIDTH_MAX)
    ws.freeze_panes = "A2"


def _shown(value: object) -> str:
    value = _cell_value(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _write_notes(ws: Worksheet, notes: Sequence[str]) -> None:
    ws.column_dimensions["A"].width = 100
    for i, note in enumerate(notes, start=1):
        _put(ws, i, 1, str(note))
        ws.cell(row=i, column=1).alignment = Alignment(wrap_text=True, vertical="top")
