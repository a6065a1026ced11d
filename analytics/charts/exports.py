"""What publishing does to a figure drawn from protected numbers before it leaves as a file.

Why here: only charts/ touches plotly. analytics/publish/ decides what is hidden
(analytics.publish.privacy); these helpers carry that decision into a figure a chart builder
drew: a count written into its text, a total in its note, a centred message, hover values
and bar labels. The screen figures are not changed: publish/ calls these on its own copy.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from analytics.charts.base import NOTE_SIZE, add_message, add_note, new_figure, wrap

__all__ = ["bar_labels", "blank_hover", "drawn", "draws_a_value", "figure_title", "hide_small_in_text", "message_figure",
           "renote", "replace_message"]

_COUNT_IN_TEXT = re.compile(r"\b(n|events|weeks)=(\d[\d,]*)")


def hide_small_in_text(fig: go.Figure, threshold: int) -> go.Figure:
    """Counts of 1..threshold-1 written into titles, notes and legend names ("n=7", "events=3",
    "person-weeks=9") become "<11"."""
    def fix(text: str | None) -> str | None:
        if not text:
            return text
        return _COUNT_IN_TEXT.sub(lambda m: f"{m[1]}=&lt;{threshold}" if 0 < int(m[2].replace(",", "")) < threshold
                                  else m[0], text)

    for a in fig.layout.annotations:
        a.text = fix(a.text)
    for trace in fig.data:
        trace.name = fix(trace.name)
    fig.layout.title.text = fix(fig.layout.title.text)
    return fig


def figure_title(fig: go.Figure) -> str:
    """The title as plain text (markup and entities removed), for the file's name and caption."""
    return html.unescape(re.sub(r"<[^>]*>", " ", fig.layout.title.text or "")).strip()


def drawn(fig: go.Figure) -> bool:
    """Whether the figure has anything drawn (a trace)."""
    return bool(fig.data)


def draws_a_value(fig: go.Figure) -> bool:
    """Whether any bar, line point or cell shows a value: a survival curve's 100% at day 0 and
    text (numbers-at-risk rows) do not count, so a chart whose every value was suppressed reads
    as empty and can say so instead of showing bare axes."""
    for trace in fig.data:
        role = (trace.meta or {}).get("role") if isinstance(trace.meta, dict) else None
        if trace.type == "heatmap":
            values = [v for row in (trace.z if trace.z is not None else ()) for v in row]
        elif trace.type in ("bar", "scatter") and getattr(trace, "mode", None) != "text" \
                and not str(role).startswith("ci_"):
            ys = list(trace.y) if trace.y is not None else []
            xs = list(trace.x) if trace.x is not None else [None] * len(ys)
            values = [y for x, y in zip(xs, ys) if not (role == "curve" and x == 0)]
        else:
            continue
        if any(v is not None and np.isfinite(float(v)) for v in values):
            return True
    return False


def _unwrap(text: str) -> str:
    """A note as one line again (charts.add_note wraps it with <br>, also after hyphens)."""
    return html.unescape(text.replace("-<br>", "-").replace("<br>", " "))


def renote(fig: go.Figure, pattern: str, repl: str) -> go.Figure:
    """Rewrite part of the note under `fig` (e.g. a total the builder summed over hidden values)."""
    note = next((a for a in fig.layout.annotations if a.name == "note"), None)
    if note is None:
        return fig
    lines = note.text.count("<br>") + 1
    text = re.sub(pattern, repl, _unwrap(note.text))
    fig.layout.annotations = [a for a in fig.layout.annotations if a.name != "note"]
    fig.update_layout(height=fig.layout.height - (NOTE_SIZE + 6) * lines)  # add_note adds that much per line
    return add_note(fig, text, below_px=-int(note.yshift or 0))


def replace_message(fig: go.Figure, text: str) -> go.Figure:
    """Put `text` as the figure's centred message (replacing the builder's own, if any)."""
    fig.layout.annotations = [a for a in fig.layout.annotations if a.name != "message"]
    return add_message(fig, html.escape(text))


def message_figure(title: str, text: str) -> go.Figure:
    """An empty figure that says why there is nothing in it (plain text, wrapped; short, since it
    holds one sentence)."""
    return add_message(new_figure(title, height=320), "<br>".join(html.escape(line) for line in wrap(text, 90)))


def blank_hover(fig: go.Figure, hidden: Sequence[Mapping[int, np.ndarray]]) -> go.Figure:
    """Hover values of hidden cells as blanks, not 0: in trace i, customdata column c is NaN
    where hidden[i][c] is true (one flag per point)."""
    for trace, columns in zip(fig.data, hidden):
        data = np.array(trace.customdata, dtype=float)
        for column, rows in columns.items():
            data[rows, column] = np.nan
        trace.customdata = data
    return fig


def bar_labels(fig: go.Figure, labels: Sequence[str]) -> go.Figure:
    """The first trace's bar labels, e.g. blanks for hidden shares."""
    fig.data[0].text = list(labels)
    return fig
