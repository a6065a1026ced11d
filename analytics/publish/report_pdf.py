"""Lay the outcome report (analytics.publish.report) out as a PDF with reportlab.

Charts go in as vectors: plotly's SVG (analytics.charts.render, our template) read by
svglib and scaled to the text width, so they print sharply and stay searchable. Tables
show the protected display values ("<11", "*") and format the rest per column.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import PageBreakIfNotEmpty  # a spacer spilled onto a page leaves it empty
from svglib.svglib import svg2rlg

from analytics.charts import render as chart_export
from analytics.charts.render import ChartMeta
from analytics.publish.exports import ChartExport
from analytics.publish.formatting import caption, formatted

if TYPE_CHECKING:  # report.py calls render(); a run-time import back would be a cycle
    from analytics.publish.report import Report

WIDTH = LETTER[0] - 1.5 * inch
HEADER = colors.HexColor("#E8EEF4")
GRID = colors.HexColor("#BBBBBB")
MAX_COLUMNS = 9  # tables with more columns than this get a smaller font (never split)
MAX_CHART_HEIGHT = 6.0 * inch  # a chart, its table and caption share a page (charts carry no caption here)

PRIVACY = ("Privacy: counts of people are perturbed slightly (cell key method), and counts below {t} people "
           "are not shown, nor anything that would reveal them; see Methods.")  # in full: once, in Methods
_styles = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9.5, leading=12.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444"))
METHOD = ParagraphStyle("method", parent=BODY, fontSize=8.5, leading=11)  # the appendix fits one page
CELL = ParagraphStyle("cell", parent=BODY, fontSize=7.5, leading=9)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=20, spaceAfter=10)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=14, spaceBefore=6, spaceAfter=6)


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of plain text: data never becomes markup."""
    safe = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(safe, style)


def _tables(frame: pd.DataFrame) -> list[Table]:
    """The display table as one reportlab table across the page (never split into halves): paired
    columns share a cell, and a table of many columns uses a smaller font."""
    shown = formatted(frame).reset_index()
    first, cols = shown.columns[0], list(shown.columns[1:])
    style = CELL if len(cols) < MAX_COLUMNS else ParagraphStyle("narrow", parent=CELL, fontSize=6.5, leading=8)
    header = [_p(str(c).replace("_", " "), style) for c in [first, *cols]]
    rows = [[_p(str(r[first]), style), *(_p(str(r[c]), style) for c in cols)] for _, r in shown.iterrows()]
    widths = [WIDTH * 0.22] + [WIDTH * 0.78 / max(len(cols), 1)] * len(cols)
    table = Table([header, *rows], colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), HEADER), ("GRID", (0, 0), (-1, -1), 0.4, GRID),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 1), (-1, -1), "RIGHT")]))
    return [table]


def _image(export: ChartExport, fmt: str) -> bytes:
    """The chart titled but without the caption of a chart file: in the PDF the same caption follows
    under its table, and twice the text made the chart shrink to fit the page."""
    return chart_export.export(export.figure, fmt, ChartMeta(export.meta.title, "", "", "", "", source=""))


def _chart(export: ChartExport) -> object:
    """The chart as a vector drawing scaled to the text width; as a PNG when plotly drew part of
    it as an embedded image (heatmaps), whose transparency svglib would paint black."""
    svg = _image(export, "svg")
    if b"<image" in svg:
        data = _image(export, "png")
        w, h = ImageReader(io.BytesIO(data)).getSize()
        scale = min(WIDTH / w, MAX_CHART_HEIGHT / h)
        return Image(io.BytesIO(data), width=w * scale, height=h * scale, mask="auto")
    drawing = svg2rlg(io.BytesIO(svg))
    scale = min(WIDTH / drawing.width, MAX_CHART_HEIGHT / drawing.height)
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    drawing.scale(scale, scale)
    return drawing


def _footer(report: Report) -> Callable:
    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(0.75 * inch, 0.5 * inch,
                          f"Outcome report · {report.scope} · generated {report.generated:%Y-%m-%d}")
        canvas.drawRightString(LETTER[0] - 0.75 * inch, 0.5 * inch, f"page {doc.page}")
        canvas.restoreState()
    return draw


def _contents(report: Report) -> list:
    """The sections with the first sentence of each: what a reader finds, and on which page order."""
    rows = [[_p(s.title, CELL), _p(s.text.split(". ")[0].rstrip(".") + ".", CELL)] for s in report.sections]
    rows.append([_p("Methods", CELL), _p("Definitions, statistics, privacy protection and software.", CELL)])
    table = Table(rows, colWidths=[WIDTH * 0.22, WIDTH * 0.78])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID)]))
    return [_p("Contents", H2), table]


def render(report: Report, say: Callable[[str], None]) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=LETTER, leftMargin=0.75 * inch, rightMargin=0.75 * inch,
                            topMargin=0.7 * inch, bottomMargin=0.8 * inch, title="Outcome report",
                            author="Peer-support outcomes dashboard", subject=report.scope)
    cover = [_p(report.organisation, H1)] if report.organisation else []
    numbers = [_p(f"{value}  {label}", H2) for value, label in report.headlines()]
    story: list = [*cover, _p("Outcome report", H1), _p(report.scope), *numbers, _p(f"Data cutoff {report.cutoff}. "
                   f"Generated {report.generated:%Y-%m-%d %H:%M}."), Spacer(1, 8),
                   _p(PRIVACY.format(t=report.threshold), SMALL), Spacer(1, 6), *_contents(report)]
    for section in report.sections:
        say(f"drawing {section.title.lower()}")
        story += [PageBreakIfNotEmpty(), _p(section.title, H2), _p(section.text), Spacer(1, 6)]
        for i, export in enumerate(section.exports):
            if i:  # no spacer after the last: one spilled onto a new page would leave it blank
                story.append(Spacer(1, 10))
            if export.figure is not None:
                story += [_chart(export), Spacer(1, 4)]
            story += [KeepTogether([_p(export.meta.title + ": table", SMALL), *_tables(export.table.display()),
                                    _p(caption(export), SMALL)])]
    story += [PageBreakIfNotEmpty(), _p("Methods", H2)]
    for title, text in report.methods:  # a heading never left at a page's foot without its text
        story += [KeepTogether([_p(title, ParagraphStyle("m", parent=METHOD, fontName="Helvetica-Bold")),
                                _p(text, METHOD)]), Spacer(1, 3)]
    doc.build(story, onFirstPage=_footer(report), onLaterPages=_footer(report))
    return out.getvalue()


__all__ = ["render"]
