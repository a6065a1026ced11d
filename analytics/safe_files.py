"""Formula-safe text for every CSV and XLSX cell the product writes.

A spreadsheet program treats a cell starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return as a formula, so a crafted value from an imported file (``=HYPERLINK(...)``)
could run on the reader's machine (CSV injection). Following the OWASP advice, such text gets
a leading ``'``. This module sits below both ingest/ (the import problem report) and
publish/ (exported tables), so both write through one rule without ingest importing publish.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "csv_text", "neutralise", "neutralise_frame"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Prefix ``'`` to a text value a spreadsheet would read as a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell, column name, index label and index/column name neutralised."""
    out = df.copy()
    for j in range(out.shape[1]):
        col = out.iloc[:, j]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)):
            # element by element into an object column: no dtype inference turns 12 into 12.0
            out.isetitem(j, pd.Series([neutralise(v) for v in col], index=out.index, dtype=object))
    out = out.rename(columns=neutralise, index=neutralise)
    out.index = out.index.set_names([neutralise(n) for n in out.index.names])
    out.columns = out.columns.set_names([neutralise(n) for n in out.columns.names])
    return out


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text, every text cell neutralised (None as an empty field).

    Lines end in CRLF (RFC 4180), which also makes the writer quote a field holding a bare CR.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    writer.writerows([("" if v is None else neutralise(v)) for v in row] for row in rows)
    return out.getvalue()
