"""The dashboard in a real browser: Streamlit server + Debian's Chromium driven by Playwright.

AppTest (tests/test_dashboard_*.py) runs the scripts without a browser; these tests load
each page as a user would, with JavaScript, plotly.js, the URL-bound filters, uploads and
downloads. Every number checked is recomputed with analytics/ on a copy of the same store
(the server holds the store's write lock, so the test process cannot open the file itself).

Needs Chromium at /usr/bin/chromium (`bash .ci/run` installs it). Never run
`playwright install`: Playwright drives the system browser. Full-page screenshots of
every page go to test-artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from analytics.analyses.outreach import LIST_COLUMNS, outreach, outreach_csv
from analytics.analyses import quality
from analytics.ingest.bootstrap import ensure_store
from analytics.analyses.engagement import analyse_engagement
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import overview
from analytics.outcomes.period import default_period
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store
from analytics.analyses.survival import analyse

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 120_000  # how long expect() retries: a healthy page takes 1-3 s, a cold one on a
# loaded 2-core machine 10-15 s; only a failing test ever waits this long
PROGRAM = "Recovery Mentoring"

expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Server:
    url: str
    db: Path  # the store the server uses (write-locked by it)
    reference: Path  # a copy made before the server started, for the expected numbers
    log: Path


_URL_LINE = re.compile(r"URL: (http://127\.0\.0\.1:\d+)")


def _wait_until_up(proc: subprocess.Popen, log: Path, timeout: float = 180) -> str:
    """The server's URL, once it has printed it and answers its health check. The server
    picks a free port itself (port 0) and prints it: no other process can take it first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with code {proc.returncode} before answering:\n{log.read_text()[-3000:]}")
        found = _URL_LINE.search(log.read_text(errors="replace"))
        if found:
            try:
                with urllib.request.urlopen(f"{found[1]}/_stcore/health", timeout=10) as r:
                    if r.status == 200:
                        return found[1]
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_app(db: Path, log: Path, **env: str) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on the store `db` (extra environment `env`); yields its
    URL once it answers, and stops it afterwards."""
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
           "--server.port", "0", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OUTCOMES_DB": str(db), **env},
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        yield _wait_until_up(proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    tmp = tmp_path_factory.mktemp("browser")
    db = ensure_store(tmp / "s.duckdb")
    reference = tmp / "reference.duckdb"
    shutil.copyfile(db, reference)
    log = tmp / "streamlit.log"
    with running_app(db, log) as url:
        yield Server(url, db, reference, log)


@pytest.fixture(scope="module")
def ref(server: Server) -> Store:
    """The same data as the server's store, opened read-only in this process."""
    store = Store.open(server.reference, read_only=True)
    yield store
    store.close()


@pytest.fixture(scope="module")
def chromium() -> Browser:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
                    "(`apt-get install chromium`; `bash .ci/run` does it). Do not run `playwright install`.",
                    pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tab(chromium: Browser) -> Page:
    """A fresh browser context (a new Streamlit session) per test. Not named `page` or
    `browser`: those names would clash with the pytest-playwright plugin if it is installed."""
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- helpers ---------------------------------------------------------------------------

def open_page(page: Page, server: Server, path: str) -> None:
    """Navigate and wait until the script has run. Elements appear a moment after the
    state turns idle, so assertions still go through expect(), which retries."""
    page.goto(f"{server.url}/{path}")
    page.wait_for_selector(IDLE)


def idle(page: Page) -> None:
    page.wait_for_selector(IDLE)


def assert_no_exception(page: Page) -> None:
    idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)


def metric(page: Page, label: str):
    """The value of the st.metric whose label is exactly `label`."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]').get_by_text(label, exact=True))
    return box.locator('[data-testid="stMetricValue"]')


def program_filter(page: Page):
    return page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(
        has=page.get_by_role("combobox", name="Program", exact=True))


def charts_drawn(page: Page) -> None:
    """Wait until every plotly chart on the page has drawn its SVG."""
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(c => c.querySelector('.main-svg'))""")


_CONTENT_HEIGHT = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const side = document.querySelector('[data-testid="stSidebarContent"]');
    return Math.max(main ? main.scrollHeight : 0, side ? side.scrollHeight : 0, window.innerHeight);
}"""


def _settled_height(page: Page, timeout_s: float = 10) -> int:
    """The content's height once it stops growing (the last elements arrive after the
    script state turns idle)."""
    deadline = time.monotonic() + timeout_s
    last, stable = -1, 0
    while time.monotonic() < deadline and stable < 3:
        page.wait_for_timeout(200)
        height = page.evaluate(_CONTENT_HEIGHT)
        stable = stable + 1 if height == last else 0
        last = height
    return int(last)


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot. Streamlit scrolls inside <main>, not the document, so the
    viewport is made as tall as the content first."""
    idle(page)
    charts_drawn(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = _settled_height(page)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, 16_000)})
    page.wait_for_timeout(400)  # plotly and the data grids re-lay out
    charts_drawn(page)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    return path


def n(value) -> str:
    return f"{int(value):,}"


# --- every page opens -----------------------------------------------------------------

def _home(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Recovery outcomes", level=1)).to_be_visible()
    expect(metric(page, "Participants")).to_have_text(n(ref.scalar("SELECT count(*) FROM participants")))
    expect(metric(page, "Check-ins")).to_have_text(n(ref.scalar("SELECT count(*) FROM checkins")))


def _overview(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    ov = overview(ref, Filters(), default_period(ref))
    expect(metric(page, ov.kpis["active"].label)).to_have_text(n(ov.kpis["active"].current))
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(1)


def _engagement(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Engagement", level=1)).to_be_visible()
    as_of = resolve_cutoff(ref, OutcomeSettings())
    expected = outreach(ref, Filters(), as_of=as_of)
    expect(metric(page, "Active participants, ranked")).to_have_text(n(len(expected.participants)))
    expect(page.get_by_role("heading", name="Who is slipping away? The outreach list")).to_be_visible()


def _cohorts(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Cohorts", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Retention by enrollment cohort")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)  # heatmap + trends


def _survival(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Sobriety and retention", level=1)).to_be_visible()
    d = analyse(ref, "retention").durations
    expect(metric(page, "Participants followed")).to_have_text(n(d.n))
    expect(metric(page, "Events")).to_have_text(n(d.events))


def _engagement_retention(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Engagement and retention", level=1)).to_be_visible()
    a = analyse_engagement(ref, "retention")
    expect(metric(page, "Participants")).to_have_text(n(a.n))
    expect(metric(page, "Person-weeks")).to_have_text(n(a.person_weeks))


def _data(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Data", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Import history")).to_be_visible()
    without = quality.participants_without_checkins(ref, Filters())
    expect(page.get_by_text(f"Participants without any check-in: {len(without):,}.")).to_be_visible()


# url_path is the file's stem (st.Page infers it); the default page (home) is at the root.
def _reports(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="Build the report")).to_be_visible()


def _published(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Published charts", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="People served", level=2)).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()


def _admin(page: Page, ref: Store) -> None:
    expect(page.get_by_role("heading", name="Users and audit log", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Audit log", exact=True)).to_be_visible()


PAGES = {"": _home, "overview": _overview, "engagement": _engagement, "cohorts": _cohorts,
         "survival": _survival, "engagement_retention": _engagement_retention, "published": _published,
         "reports": _reports, "data": _data, "admin": _admin}


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "home" for p in PAGES])
def test_every_page_opens_without_error(tab: Page, server: Server, ref: Store, path: str):
    open_page(tab, server, path)
    PAGES[path](tab, ref)
    assert_no_exception(tab)
    assert tab.url.rstrip("/") == f"{server.url}/{path}".rstrip("/")  # no redirect to another page
    screenshot(tab, path or "home")


# --- filters live in the URL -----------------------------------------------------------

def test_program_filter_goes_into_the_url_and_changes_the_numbers(tab: Page, server: Server, ref: Store):
    everyone = analyse(ref, "retention").durations.n
    one = analyse(ref, "retention", filters=Filters(programs=(PROGRAM,))).durations.n
    assert one != everyone
    open_page(tab, server, "survival")
    expect(metric(tab, "Participants followed")).to_have_text(n(everyone))

    tab.get_by_role("combobox", name="Program", exact=True).click()
    tab.get_by_role("option", name=PROGRAM, exact=True).click()
    tab.keyboard.press("Escape")

    expect(tab).to_have_url(re.compile(r"[?&]program=Recovery(\+|%20)Mentoring(&|$)"))
    expect(metric(tab, "Participants followed")).to_have_text(n(one))
    assert_no_exception(tab)
    screenshot(tab, "survival-filtered-by-program")


def test_a_link_with_the_filter_reproduces_the_view(tab: Page, server: Server, ref: Store):
    one = analyse(ref, "retention", filters=Filters(programs=(PROGRAM,))).durations
    open_page(tab, server, "survival?program=Recovery+Mentoring")
    expect(program_filter(tab).locator("[data-tag]")).to_have_text([PROGRAM])
    expect(metric(tab, "Participants followed")).to_have_text(n(one.n))
    expect(metric(tab, "Events")).to_have_text(n(one.events))
    assert_no_exception(tab)
    assert re.search(r"[?&]program=Recovery(\+|%20)Mentoring", tab.url), tab.url  # the link stays as given


# --- import on the Data page -----------------------------------------------------------

BAD_CHECKINS = (
    "participant_id,checked_in_on,used,craving,mood\n"
    "{known},{day},false,99,3\n"
    "P-NOBODY01,{day},false,2,3\n"
)


def test_bad_upload_shows_every_problem_and_imports_nothing(tab: Page, server: Server, ref: Store):
    participants = ref.scalar("SELECT count(*) FROM participants")
    known, enrolled = ref.rows("SELECT participant_id, enrolled_on FROM participants ORDER BY 1 LIMIT 1")[0]
    content = BAD_CHECKINS.format(known=known, day=enrolled.isoformat()).encode()

    open_page(tab, server, "data")
    tab.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "checkins.csv", "mimeType": "text/csv", "buffer": content}])
    button = tab.get_by_role("button", name="Import", exact=True)
    expect(button).to_be_enabled()  # enabled once the upload has reached the server
    idle(tab)
    button.click()

    expect(tab.locator('[data-testid="stAlert"]').filter(has_text="Nothing was imported")).to_contain_text(
        "2 problem(s) found in checkins.csv")
    idle(tab)
    table = tab.locator('[data-testid="stDataFrame"]').first  # the problem table comes first
    rows = table.locator('tbody [role="row"]')
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator('[role="gridcell"]')).to_have_text(
        ["checkins.csv", "2", "craving", "99", re.compile("out of range")])
    expect(rows.nth(1).locator('[role="gridcell"]')).to_have_text(
        ["checkins.csv", "3", "participant_id", "P-NOBODY01", re.compile("unknown participant")])
    assert_no_exception(tab)
    screenshot(tab, "data-import-problems")

    # Nothing landed: the server's store still has the same participants and only the sample's batch.
    open_page(tab, server, "")
    expect(metric(tab, "Participants")).to_have_text(n(participants))
    expect(metric(tab, "Check-ins")).to_have_text(n(ref.scalar("SELECT count(*) FROM checkins")))
    expect(tab.get_by_text(re.compile(r"^Batch 1 on .*\(bundled sample\)"))).to_be_visible()


# --- the outreach list download --------------------------------------------------------

def test_outreach_download_equals_the_analytics(tab: Page, server: Server, ref: Store):
    top = 30  # not the default 50, to check the download follows the input
    as_of = resolve_cutoff(ref, OutcomeSettings())
    result = outreach(ref, Filters(), as_of=as_of)
    expected = result.participants.head(top)
    expected_csv = list(csv.reader(io.StringIO(outreach_csv(expected).decode())))

    open_page(tab, server, "engagement")
    field = tab.get_by_role("spinbutton", name="Show the top N", exact=True)
    field.fill(str(top))
    field.press("Enter")
    expect(tab).to_have_url(re.compile(rf"[?&]outreach_top={top}(&|$)"))
    expect(metric(tab, "Active participants, ranked")).to_have_text(n(len(result.participants)))
    idle(tab)

    with tab.expect_download() as info:
        tab.get_by_role("button", name="Download outreach list (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"outreach-{as_of}.csv"
    got = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert got[0] == expected_csv[0] == list(LIST_COLUMNS)
    assert got == expected_csv  # same people, same order, same chances and reasons
    assert len(got) - 1 == len(expected) == top
    assert_no_exception(tab)


# --- exports --------------------------------------------------------------------------

def test_download_a_chart_as_png(tab: Page, server: Server, ref: Store):
    """The Kaplan-Meier chart's Download menu gives a PNG drawn by kaleido, in our colours."""
    import numpy as np
    from PIL import Image

    open_page(tab, server, "survival")
    charts_drawn(tab)
    idle(tab)
    tab.locator('[data-testid="stPopover"]').first.locator("button").first.click()
    png = tab.get_by_role("button", name="PNG image")
    expect(png).to_be_visible()
    with tab.expect_download() as info:
        png.click()
    download = info.value
    assert re.fullmatch(r"staying-in-the-program-time-to-dropping-out-\d{4}-\d{2}-\d{2}\.png",
                        download.suggested_filename)
    image = Image.open(download.path()).convert("RGB")
    assert image.width >= 1000
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    blue = (np.abs(pixels - [0x00, 0x72, 0xB2]).sum(axis=1) < 60).sum()
    assert blue > 500  # the curve's Okabe-Ito blue, not a grey placeholder
    assert_no_exception(tab)


def test_build_and_download_the_report(tab: Page, server: Server, ref: Store):
    open_page(tab, server, "reports")
    tab.get_by_role("button", name="Build the report").click()
    expect(tab.get_by_text("The report is ready")).to_be_visible()
    with tab.expect_download() as info:
        tab.get_by_role("button", name="Download the report (PDF)").click()
    download = info.value
    assert download.suggested_filename.startswith("outcome-report-") and download.suggested_filename.endswith(".pdf")
    text = subprocess.run(["pdftotext", download.path(), "-"], capture_output=True, text=True, check=True).stdout
    for title in ("People served", "Engagement dose", "Retention", "Sobriety", "Cohort comparison",
                  "Outcomes by program", "Methods"):
        assert title in text
    assert_no_exception(tab)
    screenshot(tab, "reports-ready")
