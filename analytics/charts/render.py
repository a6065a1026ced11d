"""Every chart as a file: PNG, SVG or PDF, drawn offline by one kept headless Chromium.

    data = export(fig, "png", ChartMeta(title=..., definition=..., n=..., period=..., cutoff=...))
    st.download_button("PNG", data, file_name=filename(meta, "png"), mime=MIME["png"])

`prepare` makes the copy that goes into a file: our "outcomes" template (a figure built
under streamlit's or plotly's default template would come out grey), the title, and a
caption under the plot (definition; n; period; data cutoff; source), stacked below any
note the builder put there, with the bottom margin grown so nothing is clipped. A chart
that leaves the app must say what it counts and as of when.

The browser. kaleido 1.x draws with a Chromium driven by choreographer; starting one costs
about 2-3 s, drawing one image about 0.2-0.4 s. So one browser is kept per process, started
on the first export, shared by all Streamlit sessions (threads) behind a lock, replaced if
it dies or hangs, and closed by `shutdown()` (registered with atexit), which waits until no
process of the browser's process group is left (and kills the group if one lingers). It
runs on a private asyncio loop in a daemon thread; every wait has a timeout, so a browser
that cannot start or hangs raises `ExportError` instead of blocking a page. (kaleido's own
`start_sync_server` is not used: its calls wait without a timeout, and if the browser fails
to start they block forever.)

- Which browser: $BROWSER_PATH if set (analytics.settings); otherwise Debian's
  /usr/bin/chromium. The path is passed to kaleido as its `path` argument (kaleido hands it
  to choreographer), never written into the environment; explicitly, also because choreographer
  prefers a browser downloaded by `kaleido_get_chrome` over BROWSER_PATH. Every image of this
  process is drawn by this module's kept browser. Never run the download commands here.
- Flags: choreographer starts it headless with --no-sandbox (its default, needed when
  running as root, as in our containers), --disable-gpu and --disable-dev-shm-usage.
- Offline: the page loads plotly.js from the plotly package (package_data/plotly.min.js)
  and kaleido's own script, both file:// URLs; MathJax, which kaleido would fetch from a
  CDN, is off (charts.KALEIDO_OPTIONS; our text is plain). `page_sources()` lists them.

Errors: ExportError(RuntimeError) for "no browser", "browser did not start", "drawing
failed or timed out"; ValueError for an unknown format.

Text in the PDF is real text, but chromium writes typographic ligatures: pdftotext gives
"cutoﬀ" for "cutoff" (normalise with NFKC before searching it).
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import html
import math
import os
import re
import signal
import subprocess
import textwrap
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio

from analytics.charts.base import KALEIDO_OPTIONS, MUTED, NOTE_SIZE, PALETTE, TEMPLATE_NAME, WIDTH
from analytics.settings import BROWSER_PATH

__all__ = ["FORMATS", "MIME", "ChartMeta", "ExportError", "export", "filename", "page_sources", "prepare",
           "shutdown"]

FORMATS = ("png", "svg", "pdf")
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}

DEBIAN_CHROMIUM = BROWSER_PATH.default
INSTALL_HINT = ("Install Debian's chromium (`apt-get install chromium`, which puts it at /usr/bin/chromium), "
                "or set BROWSER_PATH to a Chrome/Chromium executable. Do not run kaleido_get_chrome or "
                "plotly_get_chrome: the server has no internet.")
START_TIMEOUT = 30.0   # seconds for the browser to start and load plotly.js
RENDER_TIMEOUT = 30.0  # seconds to draw one image
CLOSE_TIMEOUT = 15.0
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

CAPTION_SIZE = NOTE_SIZE
LINE_HEIGHT = 1.3      # plotly.js draws multi-line text at 1.3 em per line
CHAR_EM = 0.55         # average character width in em, with room to spare (DejaVu Sans ~0.49)
AXIS_PX = 60           # room under the plot area for x tick labels and axis title
GAP_PX = 10            # between a note and the caption
BOTTOM_PAD_PX = 14
TITLE_TOP_PX = 80      # top margin needed when we add a title
PLACEHOLDER = re.compile(r"^#0000(0[1-9]|10)$")  # streamlit's colorway placeholders #000001..#000010


class ExportError(RuntimeError):
    """A chart could not be written: no browser, the browser did not start, or drawing failed."""


@dataclass(frozen=True)
class ChartMeta:
    """What a chart file must say about itself, printed in its caption."""

    title: str
    definition: str          # one or two sentences: what is counted/estimated
    n: str                   # e.g. "n = 1,204 participants"
    period: str              # e.g. "Enrolled 2024-01-01 to 2025-06-30"
    cutoff: str | dt.date    # data cutoff (date of the latest record)
    source: str = "Peer-support outcomes dashboard"

    def caption_lines(self) -> list[str]:
        """[definition, 'n · period · Data cutoff ... · Source: ...'] (empty parts left out), unwrapped."""
        cutoff = self.cutoff.isoformat() if isinstance(self.cutoff, dt.date) else str(self.cutoff).strip()
        if isinstance(self.cutoff, dt.datetime):
            cutoff = self.cutoff.date().isoformat()
        facts = [self.n.strip(), self.period.strip()]
        if cutoff:
            facts.append(cutoff if cutoff.lower().startswith("data cutoff") else f"Data cutoff {cutoff}")
        if self.source.strip():
            source = self.source.strip()
            facts.append(source if source.lower().startswith("source") else f"Source: {source}")
        lines = [self.definition.strip(), " · ".join(f for f in facts if f)]
        return [line for line in lines if line]


# ---------------------------------------------------------------------------------------------
# The figure that goes into a file


def _is_ours(template: Any) -> bool:
    return template == pio.templates[TEMPLATE_NAME]


def _needs_our_template(template: Any) -> bool:
    """Empty, streamlit's placeholders, plotly's default or the current default: use ours instead.
    A template someone chose on purpose (any other) is kept."""
    if _is_ours(template):
        return False
    if not template.to_plotly_json():
        return True
    colorway = template.layout.colorway or ()
    if any(isinstance(c, str) and PLACEHOLDER.match(c) for c in colorway):
        return True
    defaults = {"plotly", "streamlit", *str(pio.templates.default or "").split("+")} - {TEMPLATE_NAME, ""}
    return any(name in pio.templates and template == pio.templates[name] for name in defaults)


def _real_colours(obj: Any) -> Any:
    """Streamlit's colorway placeholders (#000001..#000010) baked into traces -> our palette."""
    if isinstance(obj, dict):
        return {k: _real_colours(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_real_colours(v) for v in obj]
    if isinstance(obj, str) and PLACEHOLDER.match(obj):
        return PALETTE[(int(obj[1:], 16) - 1) % len(PALETTE)]
    return obj


def _styled(fig: go.Figure, width: int, height: int | None) -> go.Figure:
    """A copy in our template (unless it has a deliberate one of its own) at the given size."""
    if not isinstance(fig, go.Figure):
        fig = go.Figure(fig)
    spec = fig.to_dict()  # a deep copy
    layout = spec.setdefault("layout", {})
    if _needs_our_template(fig.layout.template):
        layout["template"] = pio.templates[TEMPLATE_NAME]
        spec["data"] = _real_colours(spec.get("data", []))
    out = go.Figure(spec)
    out.update_layout(width=width, height=height or _height(out))
    return out


def _template_layout(fig: go.Figure) -> go.Layout:
    return fig.layout.template.layout if fig.layout.template else go.Layout()


def _height(fig: go.Figure) -> int:
    return int(fig.layout.height or _template_layout(fig).height or 450)


def _margin(fig: go.Figure, side: str) -> float:
    own = getattr(fig.layout.margin, side)
    if own is not None:
        return float(own)
    tpl = getattr(_template_layout(fig).margin, side)
    return float(tpl) if tpl is not None else (100.0 if side == "t" else 80.0)


def _lines(text: str | None) -> int:
    return len(re.split(r"<br\s*/?>", text or "", flags=re.IGNORECASE))


def _below_plot_px(ann: Any, plot_px: float, default_size: float) -> float:
    """How far under the bottom of the plot area this paper-anchored annotation reaches (px, 0 if not)."""
    if ann.yref != "paper" or ann.visible is False or not ann.text:
        return 0.0
    size = float(ann.font.size or default_size)
    text_px = _lines(ann.text) * size * LINE_HEIGHT + 2 * float(ann.borderpad or 1) + 2 * float(ann.borderwidth or 0)
    y = float(ann.y if ann.y is not None else 0.5)
    anchor_px = -y * plot_px - float(ann.yshift or 0)  # positive: below the plot area
    anchor = ann.yanchor or "auto"
    if anchor == "auto":  # paper-referenced text without arrow: the closest side
        anchor = "middle" if ann.showarrow is not False else ("bottom" if y <= 1 / 3 else "top" if y >= 2 / 3
                                                               else "middle")
    reach = anchor_px + {"top": text_px, "middle": text_px / 2, "bottom": 0.0}[anchor]
    return max(reach, 0.0)


def _wrap(line: str, chars: int) -> list[str]:
    return textwrap.wrap(line, chars, break_long_words=True, break_on_hyphens=False) or [""]


def prepare(fig: go.Figure, meta: ChartMeta, *, width: int = WIDTH, height: int | None = None) -> go.Figure:
    """A copy of `fig` ready for a file: our template, a title, and the caption of `meta` under the plot.

    The caption goes below the x axis and below every note already under the chart (measured
    from their position, line count and font), and the bottom margin grows to hold it. With
    `height` None the image grows by that much, so the plot keeps its size; with a `height`
    the image has that height and the plot area shrinks. Calling it again on its own output
    replaces the caption rather than adding a second one.
    """
    out = _styled(fig, width, None)
    out.layout.annotations = [a for a in out.layout.annotations if a.name != "caption"]
    base_height = _height(out)
    margin_t, margin_b, margin_l = _margin(out, "t"), _margin(out, "b"), _margin(out, "l")
    grow = 0.0
    if not (out.layout.title and out.layout.title.text):
        out.update_layout(title_text=html.escape(meta.title, quote=False))
        if margin_t < TITLE_TOP_PX:
            grow += TITLE_TOP_PX - margin_t
            margin_t = TITLE_TOP_PX
    plot_px = max(base_height - margin_t - margin_b, 1.0)
    font_size = float(out.layout.font.size or _template_layout(out).font.size or 12)
    under = max([AXIS_PX] + [_below_plot_px(a, plot_px, font_size) + GAP_PX for a in out.layout.annotations])
    chars = max(40, math.floor((width - margin_l - 10) / (CAPTION_SIZE * CHAR_EM)))
    lines = [html.escape(w, quote=False) for line in meta.caption_lines() for w in _wrap(line, chars)]
    caption_px = len(lines) * CAPTION_SIZE * LINE_HEIGHT + 2
    out.add_annotation(text="<br>".join(lines), name="caption", xref="paper", yref="paper", x=0, y=0,
                       xanchor="left", yanchor="top", yshift=-under, showarrow=False, align="left",
                       font=dict(size=CAPTION_SIZE, color=MUTED))
    needed_b = math.ceil(under + caption_px + BOTTOM_PAD_PX)
    if needed_b > margin_b:
        grow += needed_b - margin_b
        margin_b = needed_b
    out.update_layout(margin=dict(t=margin_t, b=margin_b), height=height or math.ceil(base_height + grow))
    return out


# ---------------------------------------------------------------------------------------------
# The kept browser


def _browser_path() -> str | None:
    """$BROWSER_PATH, else Debian's chromium if present, else None (kaleido looks). The path goes to
    kaleido as an argument (passed on to choreographer), so nothing is written into the environment."""
    chosen = BROWSER_PATH.from_env()
    if chosen:
        return chosen
    return DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None


def page_sources() -> list[str]:
    """The scripts the drawing page loads (for checking that nothing comes from the network)."""
    from kaleido import PageGenerator

    page = PageGenerator(plotly=PLOTLY_JS.as_uri(), mathjax=KALEIDO_OPTIONS["mathjax"]).generate_index()
    return re.findall(r'<script src="([^"]+)"', page)


class _Browser:
    """One kaleido (one Chromium, one tab) on a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self.path = _browser_path()
        self.kaleido: Any = None
        self.hung = False  # a render failed for a reason other than the figure
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chart-export-browser", daemon=True)
        self.thread.start()
        try:
            self._call(self._open(), START_TIMEOUT, "start the browser")
        except BaseException:
            self.close(graceful=False)
            raise

    async def _open(self) -> None:
        import kaleido
        from kaleido import PageGenerator

        if not PLOTLY_JS.is_file():
            raise ExportError(f"plotly.js is missing from the plotly package ({PLOTLY_JS}); reinstall plotly.")
        page = PageGenerator(plotly=PLOTLY_JS.as_uri(), mathjax=KALEIDO_OPTIONS["mathjax"])
        try:
            self.kaleido = kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT, page_generator=page, path=self.path,
                                           enable_sandbox=False)  # --no-sandbox: needed as root
        except Exception as e:  # ChromeNotFoundError
            where = f"at BROWSER_PATH={self.path!r}" if self.path else "on this machine"
            raise ExportError(f"No Chrome/Chromium found {where} to draw chart files. {INSTALL_HINT}") from e
        await self.kaleido.open()

    def _call(self, coro: Any, timeout: float, what: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(_quiet_when_cancelled(coro), self.loop)
        try:
            return future.result(timeout)
        except ExportError:
            raise
        except TimeoutError as e:
            if future.done():  # kaleido's own render timeout, raised inside the loop
                raise ExportError(f"Timed out trying to {what} (browser {self.path or 'auto'}).") from e
            future.cancel()
            raise ExportError(f"Timed out after {timeout:.0f} s trying to {what} (browser {self.path or 'auto'}). "
                              + (INSTALL_HINT if what == "start the browser" else "")) from e
        except Exception as e:
            hint = f" {INSTALL_HINT}" if what == "start the browser" else ""
            reason = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)  # not choreographer's hints
            raise ExportError(f"Could not {what} (browser {self.path or 'auto'}): {reason}{hint}") from e

    def alive(self) -> bool:
        proc = getattr(self.kaleido, "subprocess", None)
        return not self.hung and self.thread.is_alive() and proc is not None and proc.poll() is None

    def render(self, spec: dict, opts: dict) -> bytes:
        try:
            return self._call(self.kaleido.calc_fig(spec, opts=opts), RENDER_TIMEOUT + 5,
                              f"draw the chart as {opts['format'].upper()}")
        except ExportError as e:
            from kaleido.errors import JavascriptError, KaleidoError

            # Only an error about the figure itself leaves the browser usable. After a timeout,
            # choreographer's channel is closed ("Executor is closed"): never reuse it.
            self.hung = not isinstance(e.__cause__, (JavascriptError, KaleidoError))
            raise

    def close(self, *, graceful: bool = True) -> None:
        """Close the browser, then stop the loop. A browser that failed or hangs (graceful=False) or
        does not close in time is killed with its process group (started with its own session)."""
        k, self.kaleido = self.kaleido, None
        if k is not None:
            proc = getattr(k, "subprocess", None)
            if not graceful:
                _kill_group(proc)
            try:  # also removes kaleido's and chromium's temporary folders
                asyncio.run_coroutine_threadsafe(k.close(), self.loop).result(CLOSE_TIMEOUT if graceful else 3)
            except Exception:  # noqa: BLE001 - killed below
                pass
            _kill_group(proc)
            if proc is not None and _wait_group_gone(proc.pid, 3.0) is False:  # a child outlived chromium
                _kill_group(proc, force=True)
                _wait_group_gone(proc.pid, 2.0)
        if self.loop.is_running():
            try:  # let choreographer's watchdog and readers end, so none is destroyed while pending
                asyncio.run_coroutine_threadsafe(_cancel_pending(), self.loop).result(5)
            except Exception:  # noqa: BLE001
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


def _kill_group(proc: Any, *, force: bool = False) -> None:
    """SIGKILL the browser's process group (the wrapper choreographer starts in a new session, and
    chromium with all its helpers under it), if the wrapper still runs or `force`."""
    if proc is None or (proc.poll() is not None and not force):
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except (ProcessLookupError, PermissionError, OSError, subprocess.TimeoutExpired):
        pass


def _group_members(pgid: int) -> list[int] | None:
    """Live (not zombie) processes of process group `pgid`, from /proc; None where there is no /proc."""
    if not os.path.isdir("/proc/self"):
        return None
    live = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            live.append(int(entry.name))
    return live


def _wait_group_gone(pgid: int, timeout: float) -> bool | None:
    """Wait until no process of the group is left: True when gone, False if some remain, None if unknown."""
    deadline = time.monotonic() + timeout
    while (live := _group_members(pgid)) is not None:
        if not live:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return None


async def _quiet_when_cancelled(coro: Any) -> Any:
    """Await `coro`; once we have cancelled it (a timeout), end as cancelled whatever it raises
    (choreographer turns a cancelled start into BrowserFailedError, which nobody would read)."""
    try:
        return await coro
    except BaseException as e:
        task = asyncio.current_task()
        if task is not None and task.cancelling() and not isinstance(e, asyncio.CancelledError):
            raise asyncio.CancelledError() from e
        raise


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=3)


_lock = threading.Lock()
_browser: _Browser | None = None


def _kept_browser() -> _Browser:
    """The process's browser, started (or restarted after a crash) on demand. Call with _lock held."""
    global _browser
    if _browser is not None and not _browser.alive():
        _browser.close()
        _browser = None
    if _browser is None:
        _browser = _Browser()
    return _browser


def shutdown() -> None:
    """Close the kept browser, if one was started. Safe to call twice; export() starts a new one."""
    global _browser
    with _lock:
        if _browser is not None:
            _browser.close()
            _browser = None


atexit.register(shutdown)


# ---------------------------------------------------------------------------------------------
# Public API


def _check_format(fmt: str) -> str:
    f = str(fmt).lower().lstrip(".")
    if f not in FORMATS:
        raise ValueError(f"Unknown chart file format {fmt!r}: use one of {', '.join(FORMATS)}")
    return f


def export(fig: go.Figure, fmt: str, meta: ChartMeta | None = None, *, width: int = WIDTH,
           height: int | None = None, scale: float = 2) -> bytes:
    """The chart as PNG, SVG or PDF bytes; with `meta`, prepared first (title, caption).

    `scale` multiplies the pixels of a PNG (2: sharp on high-density screens and in print);
    SVG and PDF are vector and drawn at scale 1 (a PDF page is width x height px).
    Raises ValueError for another format, ExportError when the browser fails.
    """
    global _browser
    fmt = _check_format(fmt)
    out = prepare(fig, meta, width=width, height=height) if meta is not None else _styled(fig, width, height)
    opts = {"format": fmt, "width": out.layout.width, "height": out.layout.height,
            "scale": scale if fmt == "png" else 1}
    spec = out.to_dict()
    with _lock:
        browser = _kept_browser()
        try:
            return browser.render(spec, opts)
        except ExportError:
            if not browser.alive():  # it died or hung: start afresh next time
                browser.close(graceful=not browser.hung)
                _browser = None
            raise


def filename(meta_or_title: ChartMeta | str, fmt: str, *, on: dt.date | None = None) -> str:
    """'retention-by-program-2026-11-27.png': the title as a lower-case ASCII slug, the date of
    the export (`on`, default today) and the extension. Only [a-z0-9-] and one dot."""
    fmt = _check_format(fmt)
    title = meta_or_title.title if isinstance(meta_or_title, ChartMeta) else str(meta_or_title)
    text = html.unescape(re.sub(r"<[^>]*>", " ", title))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(slug) > 80:
        slug = slug[:80].rsplit("-", 1)[0] or slug[:80]
    return f"{slug or 'chart'}-{(on or dt.date.today()).isoformat()}.{fmt}"
