"""The problem report: what is wrong with the input, where, and the CSV a data manager reads.

Every problem is listed at once (file, row, column, value, what is wrong) so a file is fixed
in one pass; a kind of problem seen many times is listed MAX_EXAMPLES times and then counted,
so a broken file gives a readable report, not a million lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics.safe_files import csv_text

MAX_EXAMPLES = 20  # rows listed per problem; the rest are counted
REPORT_COLUMNS = ("file", "row", "column", "value", "problem")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input; row is None for a whole-file problem."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    problem: str


def file_problem(file: str, problem: str) -> Problem:
    """A problem with a whole file (no row, column or value)."""
    return Problem(file, None, None, None, problem)


def more_problem(file: str, column: str | None, more: int, what: str) -> Problem:
    """The line that stands for the examples not listed."""
    return Problem(file, None, column, None, f"... and {more} more {what}")


def capped(problems: Iterable[Problem]) -> list[Problem]:
    """At most MAX_EXAMPLES problems per (file, message); the rest counted in one line."""
    seen: dict[tuple[str, str], int] = {}
    kept: list[Problem] = []
    for p in problems:
        label = (p.file, p.problem)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= MAX_EXAMPLES:
            kept.append(p)
    for (file, message), n in seen.items():
        if n > MAX_EXAMPLES:
            kept.append(more_problem(file, None, n - MAX_EXAMPLES, f"times: {message}"))
    return kept


def short(text: str | None, limit: int = 80) -> str | None:
    """A value cut to `limit` characters for the report."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problems_csv(problems: list[Problem]) -> str:
    """The problem report as CSV text (file,row,column,value,problem), formula-safe: a value
    such as ``=HYPERLINK(...)`` from the input comes out as text, never as a live formula."""
    return csv_text(REPORT_COLUMNS, ([p.file, "" if p.row is None else p.row, p.column or "",
                                      p.value or "", p.problem] for p in problems))
