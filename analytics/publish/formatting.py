"""Published tables as a reader sees them, in the PDF and on the Published charts page alike:
labels instead of column names, percentages, counts with thousands separators, blanks instead
of None or NaN, and paired columns in one cell so a table fits the page width."""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import pandas as pd

from analytics.publish.privacy import COMPLEMENTARY, small_marker

__all__ = ["caption", "formatted", "markers_note"]

if TYPE_CHECKING:
    from analytics.publish.exports import ChartExport


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """The protected display table (``Protected.display()``) as text, ready to show; rows
    without a named index are "group"s (not "index")."""
    return _combined(frame).rename_axis(frame.index.name or "group")


def _fmt(column: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column.startswith(("survival_", "month_", "share_", "retained_")) or column == "rate":
        return f"{value:.1%}"
    if column.startswith("p_"):
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    if column.startswith(("mean_", "meetings_per", "checkins_per", "mentoring_sessions_per")):
        return f"{value:.1f}"
    if column.startswith("median"):
        return f"{value:.0f}"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


LABELS = {"p_t": "p (t-test)", "p_wilcoxon": "p (Wilcoxon)", "rate": "rate (done / due)"}


def _label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").replace("checkins", "check-ins"))


def markers_note(table: pd.DataFrame, threshold: int) -> str:
    """What each marker in the formatted ``table`` means, for the markers it holds: a reader of a
    table on its own (a page, a PDF page) must not meet a "<11" or "*" the caption leaves unsaid."""
    cells = [str(v) for v in table.to_numpy().ravel()]
    small = small_marker(threshold)
    parts = []
    if any(small in v for v in cells):
        parts.append(f'"{small}": fewer than {threshold} people (1 to {threshold - 1}), not shown.')
    if any(COMPLEMENTARY in v for v in cells):
        parts.append(f'"{COMPLEMENTARY}": hidden, because with the totals it would show a count of 1 to '
                     f"{threshold - 1}, or because it is a rate, mean, p-value or interval built on a hidden count.")
    return " ".join(parts)


def caption(export: ChartExport) -> str:
    """The caption under a published table (Published charts page and PDF alike): definition, n,
    period, cutoff and source, then what its markers mean."""
    table = formatted(export.table.display())
    lines = [line if line.endswith((".", ":")) else line + "." for line in export.meta.caption_lines()]
    return " ".join([*lines, markers_note(table, export.table.threshold)]).strip()  # "...dashboard. "<11": ..."


PAIRS = (("checkins_reporting_use", "share_reporting_use"), ("at_or_above_47_baseline", "share_47_baseline"),
         ("at_or_above_47_followup", "share_47_followup"))  # a count and its share: one cell, "14 (11.3%)"


def _combined(frame: pd.DataFrame) -> pd.DataFrame:
    """Fewer columns, so a table fits the page width instead of splitting into stacked halves: a
    value and its number at risk, a count and its share, and a confidence interval share a cell."""
    out = pd.DataFrame(index=frame.index)
    used: set[str] = set()
    cols = [str(c) for c in frame.columns]
    for c in cols:
        if c in used:
            continue
        day = c.rsplit("_", 1)[-1]
        partner = (f"at_risk_{day}" if c.startswith(("survival_", "month_")) else
                   dict(PAIRS).get(c) or ("ci_high" if c == "ci_low" else None))
        if partner in cols:
            a, b = frame[c], frame[partner]
            if c == "ci_low":
                label, text = "95% CI", [_join(_fmt(c, x), _fmt(partner, y), " to ") for x, y in zip(a, b)]
            elif c.startswith(("survival_", "month_")):
                label = f"{_label(c)} (at risk)"
                text = [_join(_fmt(c, x), _fmt(partner, y), " (", ")") for x, y in zip(a, b)]
            else:
                label = f"{_label(c)} (share)"
                text = [_join(_fmt(c, x), _fmt(partner, y), " (", ")") for x, y in zip(a, b)]
            out[label] = text
            used |= {c, partner}
        else:
            out[_label(c)] = [_fmt(c, x) for x in frame[c]]
            used.add(c)
    return out


def _join(a: str, b: str, sep: str, end: str = "") -> str:
    return f"{a}{sep}{b}{end}" if a and b else a or (f"({b})" if b and end else b)
