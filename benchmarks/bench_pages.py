"""Dashboard page speed: in a real browser on the sample, and each page's analytics on 100,000 participants.

    python benchmarks/bench_pages.py [--rounds 3] [--participants 100000] [--workdir DIR]
                                     [--only browser|analytics]

(a) Browser, on the bundled sample (800 participants): for every page, a fresh
    `streamlit run dashboard/app.py` and Debian's Chromium (/usr/bin/chromium, driven by
    Playwright; never `playwright install`). Time from `page.goto` to the app being idle
    (`data-test-script-state="notRunning"`) with the page's last element shown and every
    plotly chart drawn. Cold = the first visit after the server started (the page's
    modules are imported, the store is opened, nothing is cached, the browser has not
    cached the app's static files); warm = a second visit (a reload in the same browser:
    a new Streamlit session, served from st.cache_data). Target < 2 s.

(b) Analytics, on the 100,000-participant store of bench_survival.py (built if missing):
    each page's analytics calls, with the arguments the page uses by default and no
    filter, plus the sidebar's choice queries every page runs. Cold = a fresh Python
    process and DuckDB connection (store open included, imports not; the file itself is
    in the OS cache). The Streamlit cache cannot be reached outside a running app, so
    "warm" is the second call in the same process (DuckDB and Python warmed up, nothing
    memoised); "hit" estimates an st.cache_data hit as unpickling the results (what
    st.cache_data does on a hit). Targets: < 3 s cold, < 1 s cached.

Medians over --rounds runs. Figures are not built in (b): plotly figure construction and
the transfer to the browser are in (a) only.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
BROWSER_TARGET_S = 2.0
COLD_TARGET_S, CACHED_TARGET_S = 3.0, 1.0

# url path -> (title, and the page's last element: a test id and a regex its text matches)
PAGES = {
    "": ("Home", "stMarkdownContainer", r"^Batch \d+ on "),
    "overview": ("Overview", "stExpander", r"All KPIs as a table"),
    "engagement": ("Engagement", "stDownloadButton", r"Download outreach list"),
    "cohorts": ("Cohorts", "stCaptionContainer", r"Click a cohort in the legend"),
    "survival": ("Sobriety and retention", "stCaptionContainer", r"^Associations are not proof of cause\.$"),
    "engagement_retention": ("Engagement and retention", "stCaptionContainer", r"GEE with participants as clusters"),
    "data": ("Data", "stDataFrame", r"Share blank"),
}
SHOWN = """([testid, pattern]) => [...document.querySelectorAll(`[data-testid="${testid}"]`)]
    .some(e => new RegExp(pattern).test(e.textContent.trim()))"""
CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
    .every(c => c.querySelector('.main-svg'))"""


# --- (a) in the browser ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`streamlit run dashboard/app.py` on a store, stopped on exit (always)."""

    def __init__(self, db: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
               "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OUTCOMES_DB": str(db)},
                                         stdout=out, stderr=subprocess.STDOUT)

    def __enter__(self) -> Self:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited:\n{self.log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    time.sleep(0.1)
            raise RuntimeError(f"streamlit did not answer within 60 s:\n{self.log.read_text()[-3000:]}")
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def visit(page, url: str, last: tuple[str, str]) -> float:
    """Seconds from navigation to: script idle, the page's last element shown, charts drawn."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(IDLE)
    page.wait_for_function(SHOWN, arg=list(last), polling="raf")
    page.wait_for_function(CHARTS_DRAWN, polling="raf")
    page.wait_for_selector(IDLE)
    elapsed = time.perf_counter() - start
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"{url} shows an exception")
    return elapsed


def bench_browser(rounds: int, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    from analytics.ingest.bootstrap import ensure_store

    if not Path(CHROMIUM).is_file():
        sys.exit(f"Chromium not found at {CHROMIUM}: apt-get install chromium (never `playwright install`)")
    db = ensure_store(work / "sample.duckdb")
    times: dict[str, dict[str, list[float]]] = {p: {"cold": [], "warm": [], "session": []} for p in PAGES}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(rounds):
                for path, (_, *last) in PAGES.items():
                    with App(db, work / "streamlit.log") as app:
                        context = browser.new_context(viewport={"width": 1400, "height": 900})
                        context.set_default_timeout(120_000)
                        page = context.new_page()
                        url = f"{app.url}/{path}"
                        times[path]["cold"].append(visit(page, url, last))
                        times[path]["warm"].append(visit(page, url, last))
                        context.close()
                with App(db, work / "streamlit.log") as app:  # one session: Home, then each page once
                    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                    page.set_default_timeout(120_000)
                    for path, (_, *last) in PAGES.items():
                        times[path]["session"].append(visit(page, f"{app.url}/{path}", last))
        finally:
            browser.close()

    print(f"\n(a) Browser: navigation -> idle with the page drawn; sample store ({db.name}, 800 participants); "
          f"median of {rounds}; target < {BROWSER_TARGET_S:.0f} s")
    print("cold = the first page after a server start; warm = the same page again (a new session, cached);"
          " in session = each page's first visit when a user opens Home and then every page in turn")
    print(f"{'page':<50}{'cold s':>8}{'warm s':>8}{'in session s':>14}  {'cold ok':>7}{'warm ok':>8}{'session ok':>11}")
    for path, (title, *_) in PAGES.items():
        cold, warm, session = (statistics.median(times[path][k]) for k in ("cold", "warm", "session"))
        print(f"{title + ' (/' + path + ')':<50}{cold:>8.2f}{warm:>8.2f}{session:>14.2f}  "
              f"{_ok(cold, BROWSER_TARGET_S):>7}{_ok(warm, BROWSER_TARGET_S):>8}{_ok(session, BROWSER_TARGET_S):>11}")


def _ok(seconds: float, target: float) -> str:
    return "yes" if seconds < target else "NO"


# --- (b) the analytics each page calls -------------------------------------------------------

def page_calls(name: str):
    """(label, thunk) pairs: what the page calls through `cached`, with its default arguments
    and the sidebar left empty (Filters()). Read from dashboard/views/*.py; keep in step."""
    from analytics.analyses import activity
    from analytics.analyses.outreach import outreach
    from analytics.analyses import quality
    from analytics.analyses.cohorts import cohort_retention, cohort_trends
    from analytics.analyses.engagement import analyse_engagement
    from analytics.outcomes.filters import Filters
    from analytics.analyses.kpis import overview, weekly_trends
    from analytics.outcomes.period import default_period
    from analytics.outcomes.definitions import OutcomeSettings, latest_date, resolve_cutoff
    from analytics.analyses.summary import import_history, store_summary
    from analytics.analyses.survival import analyse
    from analytics.store.queries.filters import filter_choices

    f = Filters()  # sidebar_filters() with nothing chosen
    got = {}  # results later calls use, as the page passes them on

    def sidebar(store):  # dashboard.common._choices, run by every page
        return (*filter_choices(store), latest_date(store))

    def period(s):
        got["period"] = default_period(s)
        return got["period"]

    def cutoff(s):
        got["as_of"] = resolve_cutoff(s, OutcomeSettings())
        return got["as_of"]

    calls = {
        "home": [("store_summary", store_summary)],
        "overview": [("default_period", period),
                     ("overview", lambda s: overview(s, f, got["period"])),
                     ("weekly_trends", lambda s: weekly_trends(s, f, got["period"]))],
        "engagement": [("default_period", period),
                       ("attendance_over_time", lambda s: activity.attendance_over_time(s, f, got["period"], "week")),
                       ("weekday_pattern", lambda s: activity.weekday_pattern(s, f, got["period"])),
                       ("adherence_distribution", lambda s: activity.adherence_distribution(s, f, got["period"])),
                       ("mentor_caseloads", lambda s: activity.mentor_caseloads(s, f, got["period"])),
                       ("resolve_cutoff", cutoff),
                       ("outreach (model + backtest)", lambda s: outreach(s, f, as_of=got["as_of"]))],
        "cohorts": [("cohort_retention(quarter)", lambda s: cohort_retention(s, f, "quarter")),
                    ("cohort_trends(quarter)", lambda s: cohort_trends(s, f, "quarter"))],
        "survival": [("analyse(retention)", lambda s: analyse(s, "retention", by=None, adjust=(), filters=f))],
        "engagement_retention": [("analyse_engagement(retention)",
                                  lambda s: analyse_engagement(s, "retention", filters=f)),
                                 ("resolve_cutoff", cutoff)],
        "data": [("import_history", import_history),
                 ("last_activity_by_program", lambda s: quality.last_activity_by_program(s, f)),
                 ("checkin_coverage", lambda s: quality.checkin_coverage(s, f)),
                 ("participants_without_checkins", lambda s: quality.participants_without_checkins(s, f)),
                 ("missing_values", lambda s: quality.missing_values(s, f))],
    }
    return sidebar, calls[name]


def worker(name: str, db: Path) -> None:
    """One page's calls in this (fresh) process; prints JSON."""
    start = time.perf_counter()
    sidebar, calls = page_calls(name)
    from analytics.store.connection import Store
    imported = time.perf_counter() - start

    start = time.perf_counter()
    store = Store.open(db, read_only=True)
    opened = time.perf_counter() - start
    out = {"import": imported, "open": opened, "cold": {}, "warm": {}, "hit": {}}
    for run in ("cold", "warm"):
        results = {}
        thunks = [("sidebar choices", sidebar), *calls]
        for label, fn in thunks:
            t = time.perf_counter()
            results[label] = fn(store)
            out[run][label] = time.perf_counter() - t
        if run == "warm":
            for label, value in results.items():
                blob = pickle.dumps(value)
                t = time.perf_counter()
                pickle.loads(blob)
                out["hit"][label] = time.perf_counter() - t
    store.close()
    print(json.dumps(out))


def bench_analytics(rounds: int, participants: int, work: Path) -> None:
    from bench_survival import build_store

    db = work / f"survival-{participants}.duckdb"
    if not db.exists():
        print(f"building {db} (once)...", flush=True)
        db = build_store(work, participants)
    runs: dict[str, list[dict]] = {}
    for _ in range(rounds):
        for path in PAGES:
            name = path or "home"
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--db", str(db)],
                                  check=False, capture_output=True, text=True, cwd=REPO)
            if proc.returncode:
                sys.exit(f"worker {name} failed:\n{proc.stderr[-3000:]}")
            runs.setdefault(name, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))

    med = statistics.median
    print(f"\n(b) Analytics per page, {participants:,} participants ({db}); median of {rounds}; "
          f"targets: cold < {COLD_TARGET_S:.0f} s, cached < {CACHED_TARGET_S:.0f} s")
    print("cold = fresh process + connection (store open included); warm = 2nd call in the same process "
          "(not the Streamlit cache, which is unreachable outside the app); hit = unpickling the results "
          "(an estimate of an st.cache_data hit)")
    print(f"{'page':<26}{'open s':>8}{'cold s':>8}{'warm s':>8}{'hit s':>8}  {'cold ok':>7}{'warm ok':>8}")
    for path, (title, *_) in PAGES.items():
        rs = runs[path or "home"]
        cold = med([r["open"] + sum(r["cold"].values()) for r in rs])
        warm = med([sum(r["warm"].values()) for r in rs])
        hit = med([sum(r["hit"].values()) for r in rs])
        print(f"{title:<26}{med([r['open'] for r in rs]):>8.3f}{cold:>8.2f}{warm:>8.2f}{hit:>8.3f}  "
              f"{_ok(cold, COLD_TARGET_S):>7}{_ok(warm, CACHED_TARGET_S):>8}")
    print("\nper call, cold / warm seconds:")
    for path, (title, *_) in PAGES.items():
        rs = runs[path or "home"]
        parts = ", ".join(f"{label} {med([r['cold'][label] for r in rs]):.3f}/{med([r['warm'][label] for r in rs]):.3f}"
                          for label in rs[0]["cold"])
        print(f"  {title}: {parts}")
    print(f"(imports before timing, not counted: {med([r['import'] for rs in runs.values() for r in rs]):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-survival",
                        help="where the 100,000-participant store lives (shared with bench_survival.py)")
    parser.add_argument("--only", choices=["browser", "analytics"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.db)
        return
    if args.only != "analytics":
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
            bench_browser(args.rounds, Path(tmp))
    if args.only != "browser":
        args.workdir.mkdir(parents=True, exist_ok=True)
        bench_analytics(args.rounds, args.participants, args.workdir)


if __name__ == "__main__":
    main()
