"""Our plotly look, shared by every figure builder: template, palette, notes under charts.

Why a template of our own: importing streamlit sets plotly's default template to
"streamlit", whose colours only a browser fills in, so a figure exported to PNG/PDF
with it comes out grey. Every builder therefore passes ``template=TEMPLATE_NAME``
explicitly (``new_figure`` does it), and the app draws with ``theme=None``.

Colours are Okabe-Ito (safe for the common colour-vision deficiencies), on white,
with fonts sized for a laptop screen. Text is plain: no LaTeX, so no MathJax is
needed. plotly's ``write_image`` cannot switch kaleido's MathJax off (it drops a falsy
``pio.defaults.mathjax``), so an exporter should call kaleido itself with
``kopts=KALEIDO_OPTIONS``.
"""

from __future__ import annotations

import html
import math
import textwrap

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["FONT", "KALEIDO_OPTIONS", "PALETTE", "TEMPLATE_NAME", "add_message", "add_note",
           "color", "format_p", "new_figure", "rgba", "template", "wrap"]

TEMPLATE_NAME = "outcomes"
# Okabe-Ito, reordered so the first colours are the most distinct on white; yellow last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
FONT = "Segoe UI, Roboto, Helvetica Neue, Arial, Liberation Sans, DejaVu Sans, sans-serif"
TEXT = "#222222"
MUTED = "#555555"
GRID = "#E6E6E6"
NOTE_SIZE = 12
NOTE_WIDTH = 130  # characters per note line: fits the default 1000 px width
WIDTH = 1000
KALEIDO_OPTIONS = {"mathjax": False}


def template() -> go.layout.Template:
    """The "outcomes" template: white background, Okabe-Ito colours, readable fonts."""
    axis = dict(showgrid=True, gridcolor=GRID, zeroline=False, showline=True, linecolor="#888888",
                ticks="outside", tickcolor="#888888", automargin=True,
                title=dict(font=dict(size=14, color=TEXT)), tickfont=dict(size=13, color=TEXT))
    layout = go.Layout(
        font=dict(family=FONT, size=14, color=TEXT),
        title=dict(font=dict(size=19, color=TEXT), x=0, xref="paper", xanchor="left", y=0.98,
                   yanchor="top", automargin=True),
        colorway=list(PALETTE), paper_bgcolor="white", plot_bgcolor="white",
        xaxis=axis, yaxis=axis,
        legend=dict(bgcolor="rgba(255,255,255,0.8)", font=dict(size=13), title=dict(text="")),
        hoverlabel=dict(font=dict(family=FONT, size=13)),
        margin=dict(l=70, r=30, t=90, b=70), width=WIDTH, height=600,
    )
    return go.layout.Template(layout=layout)


pio.templates[TEMPLATE_NAME] = template()


def new_figure(title: str, note: str | None = None, *, fig: go.Figure | None = None,
               height: int = 600) -> go.Figure:
    """A figure (new, or `fig`, e.g. from make_subplots) in our template, titled, with a note."""
    fig = fig if fig is not None else go.Figure()
    fig.update_layout(template=TEMPLATE_NAME, title=dict(text=title), height=height)
    if note:
        add_note(fig, note)
    return fig


def wrap(text: str, width: int = NOTE_WIDTH) -> list[str]:
    """Split a note into lines (plotly does not wrap text)."""
    return [line for part in text.split("\n") for line in (textwrap.wrap(part, width) or [""])]


def add_note(fig: go.Figure, text: str, *, below_px: int = 60, width: int = NOTE_WIDTH) -> go.Figure:
    """Put plain `text` (definition, n, period, method) under the plot area, growing the bottom margin.

    A chart that leaves the app must carry what it counts; the note travels with the image.
    `below_px` leaves room for the x-axis tick labels and title; `width` (characters per line)
    is smaller for a chart whose plot area starts far right (long y labels, a colour bar).
    """
    lines = [html.escape(line, quote=False) for line in wrap(text, width)]  # plain text, not markup
    line_px = NOTE_SIZE + 6
    fig.add_annotation(text="<br>".join(lines), name="note", xref="paper", yref="paper", x=0, y=0,
                       xanchor="left", yanchor="top", yshift=-below_px, showarrow=False, align="left",
                       font=dict(size=NOTE_SIZE, color=MUTED))
    margin_b = below_px + line_px * len(lines) + 20
    fig.update_layout(margin=dict(b=margin_b), height=(fig.layout.height or 600) + line_px * len(lines))
    return fig


def add_message(fig: go.Figure, text: str) -> go.Figure:
    """A centred message for a figure with nothing to draw (rather than an empty frame)."""
    fig.add_annotation(text=text, name="message", xref="paper", yref="paper", x=0.5, y=0.5,
                       showarrow=False, font=dict(size=16, color=MUTED))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def color(i: int) -> str:
    """The i-th palette colour, cycling."""
    return PALETTE[i % len(PALETTE)]


# Line styles and marker symbols beside the hues, so groups differ without colour alone
# (WCAG 1.4.1; a grey print or a colour-blind reader still tells the curves apart).
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "hexagon", "triangle-down")


def dash(i: int) -> str:
    """The i-th line style, cycling."""
    return DASHES[i % len(DASHES)]


def symbol(i: int) -> str:
    """The i-th marker symbol, cycling."""
    return SYMBOLS[i % len(SYMBOLS)]


def rgba(hex_color: str, alpha: float) -> str:
    """'#RRGGBB' as an rgba() string, for semi-transparent bands in the same hue."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def format_p(p: float | None) -> str:
    """'p = 0.034', 'p < 0.001'; 'p not available' for None/NaN."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
