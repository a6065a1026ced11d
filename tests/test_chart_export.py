"""Chart files (analytics.charts.render): PNG, SVG and PDF drawn offline by the kept Chromium.

Needs Debian's chromium at /usr/bin/chromium (`bash .ci/run` installs it); never run
kaleido_get_chrome / plotly_get_chrome. The browser starts once for the module and is shut
down at the end, where the test also checks that no browser process is left behind.
Sample files go to test-artifacts/exports/ (git-ignored) for a look by eye.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from PIL import Image

from analytics.charts import render as ce
from analytics.charts.base import PALETTE, TEMPLATE_NAME, add_note, color, new_figure, rgba

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-artifacts" / "exports"
BLUE = (0x00, 0x72, 0xB2)  # PALETTE[0]
META = ce.ChartMeta(title="Retention by program",
                    definition="Share of participants still in the program 90 days after enrollment.",
                    n="n = 1,204 participants", period="Enrolled 2024-01-01 to 2025-06-30",
                    cutoff=dt.date(2025, 6, 30))

pytestmark = pytest.mark.browser  # the kept browser itself; without chromium these fail with the install hint


@pytest.fixture(scope="module", autouse=True)
def kept_browser():
    """One browser for the module; at the end it must close and leave no process behind."""
    OUT.mkdir(parents=True, exist_ok=True)
    yield
    browser = ce._browser
    pid = browser.kaleido.subprocess.pid if browser is not None and browser.kaleido is not None else None
    ce.shutdown()
    assert ce._browser is None
    if browser is not None:
        assert browser.kaleido is None and not browser.thread.is_alive()
        assert browser.loop.is_closed()
    if pid is not None:
        assert ce._group_members(pid) in ([], None)  # no chromium left in the browser's process group


def bar_figure(title: str = "Retention by program") -> go.Figure:
    fig = new_figure(title, "Note from the builder: what the bars count, who is in, and the method used. " * 3)
    for i, (name, ys) in enumerate({"Program A": [52, 61, 70], "Program B": [48, 55, 66]}.items()):
        fig.add_trace(go.Bar(x=["30 days", "60 days", "90 days"], y=ys, name=name, marker_color=color(i)))
    fig.update_layout(yaxis_title="Still in the program (%)")
    return fig


def near(img: Image.Image, rgb: tuple[int, int, int], tol: int = 8) -> int:
    """Pixels within `tol` of `rgb` on every channel."""
    a = np.asarray(img.convert("RGB")).astype(int)
    return int((np.abs(a - np.array(rgb)).max(axis=2) <= tol).sum())


def bottom_rows_blank(img: Image.Image, rows: int = 6) -> bool:
    """Nothing drawn in the last rows: the caption was not cut off at the bottom edge."""
    a = np.asarray(img.convert("L"))
    return bool((a[-rows:] > 245).all())


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "chart.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return unicodedata.normalize("NFKC", text)  # chromium's PDF keeps ligatures: "cutoﬀ" -> "cutoff"


def pdf_page(pdf: bytes, tmp_path: Path, name: str, dpi: int = 50) -> Image.Image:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-singlefile", str(path), str(tmp_path / name)], check=True)
    return Image.open(tmp_path / f"{name}.png")


# --- PNG ---------------------------------------------------------------------------------------

def test_png_size_and_palette():
    data = ce.export(bar_figure(), "png", META, width=1000, scale=2)
    (OUT / "bar.png").write_bytes(data)
    img = Image.open(BytesIO(data))
    assert img.format == "PNG"
    assert img.width == 2000
    assert img.height == 2 * ce.prepare(bar_figure(), META).layout.height
    assert near(img, BLUE) > 10_000          # the bars of Program A, in Okabe-Ito blue
    assert near(img, (0xE6, 0x9F, 0x00)) > 10_000  # Program B, orange
    assert bottom_rows_blank(img)


def test_png_without_meta_keeps_its_size():
    img = Image.open(BytesIO(ce.export(bar_figure(), "png", width=800, height=500, scale=1)))
    assert img.size == (800, 500)


def test_figure_made_under_streamlit_default_is_coloured(monkeypatch):
    monkeypatch.setattr(pio.templates, "default", pio.templates.default)  # restored afterwards
    pytest.importorskip("streamlit")  # importing it sets plotly's default template to "streamlit", as in the app
    pio.templates.default = "streamlit"
    fig = go.Figure(go.Bar(x=["a", "b", "c"], y=[3, 1, 2]))  # no colour of its own: placeholder #000001
    fig.add_trace(go.Scatter(x=["a", "b", "c"], y=[1, 2, 3], marker_color="#000002"))  # as px would bake it
    assert fig.layout.template == pio.templates["streamlit"]
    data = ce.export(fig, "png", META)
    (OUT / "streamlit-default.png").write_bytes(data)
    img = Image.open(BytesIO(data))
    assert near(img, BLUE) > 5_000
    assert near(img, (0xE6, 0x9F, 0x00)) > 200  # the line: placeholder #000002 -> second palette colour
    assert near(img, (0, 0, 1), tol=3) < 500    # no near-black placeholder bars


# --- SVG ---------------------------------------------------------------------------------------

def test_svg_has_title_and_caption():
    data = ce.export(bar_figure(), "svg", META)
    (OUT / "bar.svg").write_bytes(data)
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    text = " ".join(t.strip() for t in root.itertext())
    for part in ("Retention by program", "n = 1,204 participants", "Enrolled 2024-01-01 to 2025-06-30",
                 "Data cutoff 2025-06-30", "Source: Peer-support outcomes dashboard",
                 "Share of participants still in the program"):
        assert part in text, part
    assert PALETTE[0].lower() in data.decode().lower() or "rgb(0, 114, 178)" in data.decode()


# --- PDF ---------------------------------------------------------------------------------------

def test_pdf_text_and_render(tmp_path: Path):
    data = ce.export(bar_figure(), "pdf", META)
    (OUT / "bar.pdf").write_bytes(data)
    assert data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    assert "Retention by program" in text and "Data cutoff" in text and "n = 1,204 participants" in text
    page = pdf_page(data, tmp_path, "page")
    assert page.width > 100 and near(page, BLUE, tol=16) > 1_000
    assert bottom_rows_blank(page, rows=2)


# --- API ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jpg", "gif", "", "PNGX"])
def test_bad_format(fmt: str):
    with pytest.raises(ValueError, match="png, svg, pdf"):
        ce.export(bar_figure(), fmt)
    with pytest.raises(ValueError):
        ce.filename(META, fmt)


def test_formats_and_mime():
    assert ce.FORMATS == ("png", "svg", "pdf") and set(ce.MIME) == set(ce.FORMATS)
    assert ce.export.__module__ == "analytics.charts.render" and issubclass(ce.ExportError, RuntimeError)


def test_filename_slug():
    assert ce.filename(META, "png", on=dt.date(2026, 11, 27)) == "retention-by-program-2026-11-27.png"
    name = ce.filename('Über <b>cohort</b> 2025/26: "A & B" ../../etc', "pdf", on=dt.date(2026, 1, 2))
    assert name == "uber-cohort-2025-26-a-b-etc-2026-01-02.pdf"
    assert re.fullmatch(r"[a-z0-9-]+\.svg", ce.filename("x" * 300, "svg"))
    assert len(ce.filename("x " * 300, "svg")) < 100
    assert ce.filename("???", "png", on=dt.date(2026, 1, 2)) == "chart-2026-01-02.png"


def test_caption_lines():
    assert META.caption_lines() == [
        "Share of participants still in the program 90 days after enrollment.",
        ("n = 1,204 participants · Enrolled 2024-01-01 to 2025-06-30 · Data cutoff 2025-06-30 · "
         "Source: Peer-support outcomes dashboard")]
    m = ce.ChartMeta("T", "", "n = 3", "", "Data cutoff 2025-01-01", source="")
    assert m.caption_lines() == ["n = 3 · Data cutoff 2025-01-01"]


def annotation(fig: go.Figure, name: str):
    found = [a for a in fig.layout.annotations if a.name == name]
    assert len(found) == 1, name
    return found[0]


def test_prepare_stacks_caption_under_note_and_grows_margin():
    fig = bar_figure()
    note = annotation(fig, "note")
    out = ce.prepare(fig, META)
    cap = annotation(out, "caption")
    note_lines = note.text.count("<br>") + 1
    note_bottom = -note.yshift + note_lines * 12 * 1.3
    assert -cap.yshift >= note_bottom + 5                      # below the note, not over it
    cap_bottom = -cap.yshift + (cap.text.count("<br>") + 1) * 12 * 1.3
    assert out.layout.margin.b >= cap_bottom + 10              # and inside the image
    plot = lambda f: f.layout.height - ce._margin(f, "t") - ce._margin(f, "b")  # noqa: E731
    assert plot(out) == plot(fig)                              # the plot keeps its size
    assert len(fig.layout.annotations) == 1                    # the original is untouched
    again = ce.prepare(out, META)                              # idempotent: one caption, same size
    assert [a.name for a in again.layout.annotations].count("caption") == 1
    assert again.layout.height == out.layout.height


def test_prepare_title_and_template():
    bare = go.Figure(go.Scatter(y=[1, 2]), layout=dict(template="plotly", margin=dict(t=20)))
    out = ce.prepare(bare, META)
    assert out.layout.title.text == "Retention by program"
    assert out.layout.template == pio.templates[TEMPLATE_NAME]
    assert out.layout.margin.t >= 80
    titled = ce.prepare(bar_figure("Own title"), META)
    assert titled.layout.title.text == "Own title"
    chosen = go.Figure(layout=dict(template="ggplot2"))       # a template chosen on purpose stays
    assert ce.prepare(chosen, META).layout.template == pio.templates["ggplot2"]
    fixed = ce.prepare(bar_figure(), META, width=900, height=700)
    assert (fixed.layout.width, fixed.layout.height) == (900, 700)


def test_page_loads_nothing_from_the_network():
    sources = ce.page_sources()
    assert len(sources) == 2 and all(s.startswith("file://") for s in sources), sources
    assert any(s.endswith("/plotly/package_data/plotly.min.js") for s in sources)
    assert not any("mathjax" in s.lower() for s in sources)


def test_browser_is_kept_between_exports():
    fig = bar_figure()
    ce.export(fig, "svg")
    first, pid = ce._browser, ce._browser.kaleido.subprocess.pid
    ce.export(fig, "png")
    ce.export(fig, "pdf")
    assert ce._browser is first and ce._browser.kaleido.subprocess.pid == pid
    assert ce._browser.alive()
    assert first.path == (os.environ.get("BROWSER_PATH") or ce.DEBIAN_CHROMIUM)


def test_browser_path_is_passed_not_written_into_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert ce._browser_path() == ce.DEBIAN_CHROMIUM and "BROWSER_PATH" not in os.environ
    monkeypatch.setenv("BROWSER_PATH", "/opt/chrome/chrome")
    assert ce._browser_path() == "/opt/chrome/chrome"


def test_missing_browser_fails_fast_with_install_hint():
    code = ("import plotly.graph_objects as go\nfrom analytics.charts import render as ce\n"
            "try:\n    ce.export(go.Figure(), 'png')\nexcept ce.ExportError as e:\n    print('ExportError', e)\n")
    env = {**os.environ, "BROWSER_PATH": "/nonexistent/chromium", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert "ExportError" in run.stdout and "apt-get install chromium" in run.stdout, run.stdout + run.stderr


# --- real figures from the repo ------------------------------------------------------------------

@pytest.fixture(scope="module")
def km(tmp_path_factory: pytest.TempPathFactory) -> go.Figure:
    from analytics.ingest.bootstrap import ensure_store
    from analytics.store.connection import Store
    from analytics.analyses.survival import analyse
    from analytics.charts.survival import km_figure

    path = ensure_store(tmp_path_factory.mktemp("export") / "outcomes.duckdb")
    with Store.open(path, read_only=True) as store:
        return km_figure(analyse(store, "retention", by="program"))


def test_km_figure_png_and_pdf(km: go.Figure, tmp_path: Path):
    meta = ce.ChartMeta(title="Staying in the program", definition="Days from enrollment to dropping out.",
                        n="n = 800 participants", period="Enrolled 2023-01-01 to 2026-09-30", cutoff="2026-09-30")
    png = ce.export(km, "png", meta)
    pdf = ce.export(km, "pdf", meta)
    (OUT / "km-retention.png").write_bytes(png)
    (OUT / "km-retention.pdf").write_bytes(pdf)
    img = Image.open(BytesIO(png))
    assert img.width == 2000 and near(img, BLUE) > 2_000 and bottom_rows_blank(img)
    text = pdf_text(pdf, tmp_path)
    assert "Staying in the program" in text and "Data cutoff 2026-09-30" in text and "Numbers at risk" in text
    page = pdf_page(pdf, tmp_path, "km", dpi=72)
    page.save(OUT / "km-retention-pdf-page.png")
    assert bottom_rows_blank(page, rows=2)


def test_forest_figure_svg_and_png():
    from analytics.charts.survival import forest_figure

    terms = [{"term": "program", "level": level, "reference": "Program A", "hr": hr, "ci": ci, "p": p}
             for level, hr, ci, p in (("Program B", 0.82, (0.66, 1.01), 0.06),
                                      ("Program C", 1.35, (1.08, 1.69), 0.008),
                                      ("Program D", None, None, None))]
    fig = forest_figure(terms, title="Dropping out: hazard ratios by program", note="n=800, events=321.",
                        event="dropping out")
    meta = ce.ChartMeta(title="Hazard ratios", definition="Cox model of days to dropping out, Efron ties.",
                        n="n = 800 participants, 321 dropped out", period="Enrolled 2023-01-01 to 2026-09-30",
                        cutoff=dt.date(2026, 9, 30))
    png = ce.export(fig, "png", meta)
    (OUT / "forest.png").write_bytes(png)
    img = Image.open(BytesIO(png))
    assert near(img, BLUE) > 300 and bottom_rows_blank(img)
    svg = ce.export(fig, "svg", meta).decode()
    assert "Dropping out: hazard ratios by program" in svg and "not estimable" in svg and "Data cutoff" in svg


def test_bands_keep_their_colour():
    fig = new_figure("Bands")
    x = np.arange(100)
    fig.add_trace(go.Scatter(x=x, y=np.ones(100) * 0.8, line=dict(width=0), showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=np.ones(100) * 0.6, fill="tonexty", fillcolor=rgba(PALETTE[0], 0.15),
                             line=dict(width=0), showlegend=False))
    add_note(fig, "A band")
    img = Image.open(BytesIO(ce.export(fig, "png", scale=1)))
    light_blue = tuple(round(255 - 0.15 * (255 - c)) for c in BLUE)  # 15% blue on white
    assert near(img, light_blue, tol=6) > 10_000


def test_sessions_in_threads_share_the_browser():
    fig, results, errors = bar_figure(), [], []

    def session(fmt: str) -> None:
        try:
            results.append((fmt, ce.export(fig, fmt, META)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=session, args=(f,)) for f in ce.FORMATS * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)  # generous: only a hung export waits this long
    assert not errors and len(results) == 6
    assert all(d.startswith({"png": b"\x89PNG", "svg": b"<svg", "pdf": b"%PDF"}[f]) for f, d in results)


def test_a_dead_browser_is_replaced():
    """Last: kills the kept browser (as a crash would) and checks the next export starts a new one."""
    ce.export(bar_figure(), "svg")
    old = ce._browser
    pid = old.kaleido.subprocess.pid
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60  # SIGKILL is immediate; a loaded machine may take a moment to reap
    while old.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not old.alive()
    assert ce.export(bar_figure(), "svg").startswith(b"<svg")
    assert ce._browser is not old and ce._browser.alive()
    assert ce._group_members(pid) in ([], None)
