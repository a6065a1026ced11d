"""The report's pages as a reader sees them, for the sample, a 40-person store of two programs
(13 and 27) and the 13-person program alone: no near-empty page, no text past the margins,
survival time axes with readable ticks. Every page goes to test-artifacts/report-pages/<case>/
(git-ignored) as a PNG for a human to look at."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analytics.access import roles as access
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.period import Period
from analytics.publish import report
from analytics.store.connection import Store
from disclosure_data import small_store

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "test-artifacts" / "report-pages"
CASES = {  # name: (people per program, or None for the sample; reporting period)
    "sample": (None, Period(dt.date(2025, 10, 1), dt.date(2026, 9, 30))),
    "two-programs": ({"Peer Support": 27, "Mentoring": 13}, Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30))),
    "one-program": ({"Mentoring": 13}, Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30))),
}
MIN_CHARACTERS = 800  # a page holding only a spilled caption has a few hundred
MIN_FILLED = 0.3      # share of the page height down to the last ink above the footer
PAGE_WIDTH_PT, MARGIN_PT = 612, 54


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory) -> tuple[str, report.Report, Path]:
    """(name, the built report, its PDF), the pages written as PNG images at 60 dpi."""
    access.enforce(False)
    access.set_user(None)
    name = request.param
    sizes, period = CASES[name]
    folder = tmp_path_factory.mktemp(name)
    store = Store.open(ensure_store(folder / "s.duckdb")) if sizes is None else small_store(folder, sizes, 1)
    built = report.build(store, period)
    built.organisation = "Harbor Peer Recovery"
    pdf = folder / "report.pdf"
    pdf.write_bytes(report.render_pdf(built))
    out = PAGES / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(out / "page")], check=True)
    return name, built, pdf


def page_texts(pdf: Path) -> list[str]:
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    return [p for p in pages if p.strip()]


def test_no_page_is_near_empty(case):
    name, built, pdf = case
    texts = page_texts(pdf)
    images = sorted((PAGES / name).glob("page-*.png"))
    assert len(images) == len(texts) >= len(built.sections) + 2  # cover, a page per section, methods
    for i, (text, image) in enumerate(zip(texts[:-1], images[:-1]), start=1):
        ink = np.asarray(Image.open(image).convert("L")) < 200
        rows = np.flatnonzero(ink.any(axis=1))
        body = rows[rows < 0.9 * ink.shape[0]]  # above the footer
        assert len(" ".join(text.split())) > MIN_CHARACTERS, (name, i)
        assert body.max() / ink.shape[0] > MIN_FILLED, (name, i)


def test_no_text_runs_past_the_margins(case):
    """A table that does not fit would run off the page's right edge."""
    _, _, pdf = case
    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    right = max(float(x) for x in re.findall(r'xMax="([\d.]+)"', boxes))
    assert right <= PAGE_WIDTH_PT - MARGIN_PT + 0.5


def labelled_ticks(axis) -> list[float]:
    """The tick values an x-axis labels within its range: its tickvals, or tick0 + k dtick."""
    lo, hi = axis.range
    if axis.tickvals is not None:
        return [v for v in axis.tickvals if lo <= v <= hi]
    assert axis.tickmode == "linear"
    first = axis.tick0 + np.ceil((lo - axis.tick0) / axis.dtick) * axis.dtick
    return list(np.arange(first, hi + 1e-9, axis.dtick))


def test_survival_charts_have_readable_time_ticks(case):
    name, built, _ = case
    drawn = 0
    for s in built.sections:
        if s.title not in ("Retention", "Sobriety"):
            continue
        fig = s.exports[0].figure
        if not fig.data:  # nothing publishable: a sentence instead of axes
            assert any(a.name == "message" for a in fig.layout.annotations), (name, s.title)
            continue
        ticks = labelled_ticks(fig.layout.xaxis)
        assert len(ticks) >= 3 and ticks[0] == 0, (name, s.title, ticks)
        steps = set(np.diff(ticks))
        assert len(steps) == 1 and steps.pop() in (30, 90, 180), (name, s.title, ticks)  # days, evenly
        drawn += 1
    assert drawn == {"sample": 2, "two-programs": 1, "one-program": 0}[name]


def flat_text(pdf: Path) -> list[str]:
    """Each page's text with every run of whitespace made one space."""
    return [" ".join(p.split()) for p in page_texts(pdf)]


def test_each_caption_once_and_each_method_with_its_heading(case):
    """A chart in the PDF carries no copy of the caption printed under its table, and a heading of
    the methods appendix is never left at a page's foot with its text on the next page."""
    _, built, pdf = case
    pages = flat_text(pdf)
    methods = next(i for i, page in enumerate(pages) if page.startswith("Methods"))
    sections = " ".join(pages[:methods])  # the appendix repeats some definitions on purpose
    for s in built.sections:
        for e in s.exports:
            definition = " ".join(e.meta.definition.split())
            assert sections.count(definition) == 1, (s.title, definition)
    for title, text in built.methods:
        opening = " ".join(text.split()[:6])
        assert any(title in page and opening in page for page in pages), title


def test_no_legend_entry_without_data(case):
    """A legend key for a series that draws nothing (every value hidden) reads as a finding; a group
    whose curve stops at day 0 says so in its key."""
    name, built, _ = case
    for s in built.sections:
        for e in s.exports:
            for trace in e.figure.data if e.figure is not None else ():
                if trace.showlegend is False or trace.y is None:
                    continue
                drawn = [v for v in trace.y if v is not None and v == v]
                assert drawn, (name, s.title, trace.name)
                if s.title in ("Retention", "Sobriety") and len(drawn) == 1:
                    assert "not published past day 0" in trace.name, (name, s.title, trace.name)
