"""Sign-in in a real browser: Streamlit server + Debian's Chromium driven by Playwright.

The server's store holds the sample plus a small import of "our own" data whose program
and site are HTML/script, so everyone signs in and the hostile values reach every page.
Sign-ins wait after 3 failures (OUTCOMES_MAX_FAILED_SIGN_INS=3); sessions keep the
default idle timeout, so a slow page on a loaded machine cannot sign a test out. The idle
test has its own server (and store) where sessions go idle after 6 s
(OUTCOMES_IDLE_MINUTES=0.1). Never run `playwright install`: the system Chromium is used
(see tests/test_browser.py). Screenshots of the sign-in page and of a grant writer's
Published charts go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from analytics.access import roles as access
from analytics.access import users
from analytics.ingest.bootstrap import ensure_store
from analytics.ingest.importer import import_files
from analytics.store.connection import Store
from tests.test_browser import (  # noqa: F401  (chromium: the shared browser fixture)
    EXCEPTION,
    TIMEOUT_MS,
    VIEWPORT,
    chromium,
    idle,
    running_app,
    screenshot,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
IDLE_SECONDS = 6  # OUTCOMES_IDLE_MINUTES=0.1
DIRECTOR_PAGES = ["Home", "Overview", "Engagement", "Cohorts", "Sobriety and retention", "Engagement and retention", "Recovery capital",
                  "Published charts", "Reports", "Data"]
GRANT_WRITER_PAGES = ["Published charts", "Reports"]
OWN = {
    "participants.csv": "participant_id,program,site,enrolled_on\n" + "".join(
        f'P-HTML0{i},"{SCRIPT}","{IMG}",2026-08-0{i}\n' for i in range(1, 4)),
    "attendance.csv": "participant_id,attended_on,meeting_type,modality,minutes\n" + "".join(
        f"P-HTML0{i},2026-09-{d},aa,in_person,60\n" for i in range(1, 4) for d in (10, 20)),
}

expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    participant_ids: tuple[str, ...]


def our_store(folder: Path) -> tuple[Path, tuple[str, ...]]:
    """The sample plus the small import of "our own" data, with the three accounts; returns
    the store's path and every participant ID in it."""
    db = ensure_store(folder / "s.duckdb")
    own = folder / "own"
    own.mkdir()
    for name, text in OWN.items():
        (own / name).write_text(text)
    access.enforce(False)
    access.set_user(None)
    store = Store.open(db)
    try:
        result = import_files(store, [own], source="user", today=dt.date(2026, 11, 27))
        assert result.ok, result.problems
        for name, role in (("director", "director"), ("grant.writer", "grant_writer"), ("clinician", "clinician")):
            users.add_user(store, name, role, PASSWORD)
        users.add_user(store, "harbor.lead", "director", PASSWORD, sites=["Riverside"])
        ids = tuple(r[0] for r in store.rows("SELECT participant_id FROM participants"))
    finally:
        store.close()  # the server's process opens the file: one writer
    return db, ids


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    tmp = tmp_path_factory.mktemp("browser_auth")
    db, ids = our_store(tmp)
    log = tmp / "streamlit.log"
    with running_app(db, log, OUTCOMES_MAX_FAILED_SIGN_INS="3") as url:
        yield Server(url, log, ids)


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory) -> Server:
    """A server whose sessions go idle after IDLE_SECONDS, for the one test that waits for it."""
    tmp = tmp_path_factory.mktemp("browser_idle")
    db, ids = our_store(tmp)
    log = tmp / "streamlit.log"
    with running_app(db, log, OUTCOMES_IDLE_MINUTES=str(IDLE_SECONDS / 60)) as url:
        yield Server(url, log, ids)


@pytest.fixture
def tab(chromium: Browser) -> Page:  # noqa: F811  (the fixture imported above)
    """A fresh browser context (a new Streamlit session) per test; no test may open a
    dialog (an alert from a script value in the data would be one)."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield page
        page.wait_for_timeout(300)  # an onerror fires once the element is in the page
        assert dialogs == [], "a script from the data ran in the page"
        assert page.locator('img[src="x"]').count() == 0, "an <img> from the data was made an element"
    finally:
        context.close()


# --- helpers ---------------------------------------------------------------------------

def heading(page: Page, name: str):
    return page.get_by_role("heading", name=name, level=1)


def nav_links(page: Page) -> list[str]:
    """The titles in the sidebar navigation (each link's text starts with its icon's name)."""
    return [t.strip().split("\n")[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


def open_sign_in(page: Page, server: Server, path: str = "") -> None:
    page.goto(f"{server.url}/{path}")
    expect(heading(page, "Sign in")).to_be_visible()


def submit(page: Page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page: Page, server: Server, name: str, landing: str, path: str = "") -> None:
    open_sign_in(page, server, path)
    submit(page, name, PASSWORD)
    expect(heading(page, landing)).to_be_visible()


def no_data(page: Page) -> None:
    for testid in ("stDataFrame", "stMetric", "stPlotlyChart", "stTable"):
        expect(page.locator(f'[data-testid="{testid}"]')).to_have_count(0)


def failed(page: Page):
    return page.get_by_text("wrong user name or password")


# --- tests -------------------------------------------------------------------------------

def test_the_sign_in_page_comes_first_and_shows_no_data(tab: Page, server: Server):
    open_sign_in(tab, server)
    idle(tab)
    no_data(tab)
    expect(tab.get_by_label("User name")).to_be_visible()
    expect(tab.get_by_label("Password", exact=True)).to_have_attribute("type", "password")
    assert nav_links(tab) == []  # nothing to navigate to
    expect(tab.locator(EXCEPTION)).to_have_count(0)
    path = screenshot(tab, "sign-in")
    assert path.stat().st_size > 5_000


def test_a_wrong_password_is_refused(tab: Page, server: Server):
    open_sign_in(tab, server)
    submit(tab, "director", "not the password at all")
    expect(failed(tab)).to_be_visible()
    expect(heading(tab, "Sign in")).to_be_visible()
    no_data(tab)


def test_a_director_sees_the_director_pages(tab: Page, server: Server):
    sign_in(tab, server, "director", "Recovery outcomes")
    expect(tab.locator('[data-testid="stSidebarNav"] a')).to_have_count(len(DIRECTOR_PAGES))
    assert nav_links(tab) == DIRECTOR_PAGES
    expect(tab.get_by_text("Signed in as director (director)")).to_be_visible()
    tab.locator('[data-testid="stSidebarNav"] a', has_text="Engagement").first.click()
    expect(heading(tab, "Engagement")).to_be_visible()
    expect(tab.get_by_role("heading", name="Who is slipping away? The outreach list")).to_be_visible()
    idle(tab)
    expect(tab.locator(EXCEPTION)).to_have_count(0)


def test_a_grant_writer_sees_only_published_charts_and_reports(tab: Page, server: Server):
    sign_in(tab, server, "grant.writer", "Published charts")
    expect(tab.locator('[data-testid="stSidebarNav"] a')).to_have_count(len(GRANT_WRITER_PAGES))
    assert nav_links(tab) == GRANT_WRITER_PAGES
    idle(tab)
    expect(tab.locator(EXCEPTION)).to_have_count(0)
    text = tab.locator('[data-testid="stMain"]').inner_text()
    assert not [pid for pid in server.participant_ids if pid in text]
    screenshot(tab, "published-grant-writer")
    # The tiny HTML-named program is hidden ("<11"), and Recovery Mentoring with it ("*"): their
    # per-active values are hidden in the table, so the chart must not label them "0.0" (every
    # value shown in this store is far from zero).
    for title, zero in (("Engagement dose", "0.0"), ("Outcomes by program", "0%")):
        chart = tab.locator('[data-testid="stPlotlyChart"]').filter(has_text=title)
        labels = chart.locator(".bartext").all_text_contents()  # SVG text: no inner_text
        assert labels, f"the {title} chart has its bar labels"
        assert zero not in labels, f"hidden or unknown values labelled {zero!r} in the {title} chart: {labels}"


def no_outreach_list(page: Page, server: Server) -> None:
    idle(page)
    expect(heading(page, "Engagement")).to_have_count(0)
    expect(page.get_by_text("outreach list")).to_have_count(0)
    expect(page.get_by_text("Participants to reach out to")).to_have_count(0)
    body = page.locator("body").inner_text()
    assert not [pid for pid in server.participant_ids if pid in body]


def test_a_grant_writer_cannot_open_the_outreach_list_by_its_url(tab: Page, server: Server):
    sign_in(tab, server, "grant.writer", "Published charts")
    # a typed URL: Streamlit falls back to the first page the session may open, and says so
    tab.goto(f"{server.url}/engagement")
    expect(tab.get_by_role("dialog").get_by_text("Page not found")).to_be_visible()
    no_outreach_list(tab, server)
    tab.get_by_role("dialog").get_by_role("button", name="Close").click()
    # the new page load found the session again (the cookie): still signed in, still no list
    expect(heading(tab, "Published charts")).to_be_visible()
    assert nav_links(tab) == GRANT_WRITER_PAGES
    no_outreach_list(tab, server)


def test_a_reload_a_bookmark_and_a_second_tab_stay_signed_in(tab: Page, server: Server):
    sign_in(tab, server, "director", "Recovery outcomes")
    tab.locator('[data-testid="stSidebarNav"] a', has_text="Cohorts").click()
    expect(heading(tab, "Cohorts")).to_be_visible()
    idle(tab)
    cookie = [c for c in tab.context.cookies() if c["name"] == "outcomes_session"]
    assert cookie and cookie[0]["sameSite"] == "Strict"
    tab.reload()
    expect(heading(tab, "Cohorts")).to_be_visible()
    second = tab.context.new_page()
    second.goto(f"{server.url}/overview")  # a bookmark, in a second tab
    expect(heading(second, "Overview")).to_be_visible()
    # signing out in one tab ends the session in the other, without a click there
    tab.get_by_role("button", name="Sign out").click()
    expect(heading(tab, "Sign in")).to_be_visible()
    expect(heading(second, "Sign in")).to_be_visible()
    no_data(second)
    second.reload()
    expect(heading(second, "Sign in")).to_be_visible()
    second.close()


def test_a_deep_link_signed_out_shows_the_form_then_the_page(tab: Page, server: Server):
    open_sign_in(tab, server, "cohorts")
    idle(tab)
    expect(tab.get_by_role("dialog")).to_have_count(0)  # no "Page not found"
    no_data(tab)
    submit(tab, "director", PASSWORD)
    expect(heading(tab, "Cohorts")).to_be_visible()
    assert tab.url.rstrip("/").endswith("/cohorts")


def test_failed_sign_ins_are_throttled_not_locked(tab: Page, server: Server):
    open_sign_in(tab, server)
    for i in range(3):
        submit(tab, "clinician", f"wrong password number {i}")
        expect(failed(tab)).to_be_visible()
        idle(tab)
    submit(tab, "clinician", PASSWORD)
    expect(tab.get_by_text("Too many failed sign-ins: wait")).to_be_visible()
    expect(heading(tab, "Sign in")).to_be_visible()
    no_data(tab)


def test_a_site_scoped_account_sees_its_sites_only(tab: Page, server: Server):
    sign_in(tab, server, "harbor.lead", "Recovery outcomes")
    expect(tab.get_by_text("sees Riverside")).to_be_visible()
    tab.goto(f"{server.url}/overview?site=Downtown")  # a crafted URL asking for another site
    expect(heading(tab, "Overview")).to_be_visible()
    idle(tab)
    tab.get_by_role("combobox", name="Site", exact=True).click()
    assert tab.get_by_role("option").all_inner_texts() == ["Riverside"]


def test_sign_out_returns_to_the_sign_in_page(tab: Page, server: Server):
    sign_in(tab, server, "director", "Recovery outcomes")
    tab.get_by_role("button", name="Sign out").click()
    expect(heading(tab, "Sign in")).to_be_visible()
    idle(tab)
    no_data(tab)
    assert nav_links(tab) == []


def test_an_idle_session_clears_the_page_without_a_click(tab: Page, idle_server: Server):
    """Waiting is the point here: longer than the idle timeout, however slow the machine
    (the session's clock starts at the sign-in, before the landing page has even drawn)."""
    sign_in(tab, idle_server, "director", "Recovery outcomes")
    idle(tab)
    tab.wait_for_timeout((IDLE_SECONDS + 3) * 1000)  # no click: the page's timer finds the session over
    expect(heading(tab, "Sign in")).to_be_visible()
    expect(tab.get_by_text("You were signed out after 0.1 minutes without activity.")).to_be_visible()
    idle(tab)
    no_data(tab)
    expect(heading(tab, "Recovery outcomes")).to_have_count(0)


def test_html_and_script_in_the_data_are_shown_as_text(tab: Page, server: Server):
    sign_in(tab, server, "director", "Recovery outcomes")
    tab.locator('[data-testid="stSidebarNav"] a', has_text="Overview").click()
    expect(heading(tab, "Overview")).to_be_visible()
    idle(tab)
    tab.get_by_role("combobox", name="Program", exact=True).click()
    option = tab.get_by_role("option", name=SCRIPT, exact=True)
    expect(option).to_be_visible()  # the option reads as the literal text
    option.click()
    tab.keyboard.press("Escape")
    # the filters are described in a caption: the value is text there, not an element
    expect(tab.locator('[data-testid="stCaptionContainer"]').filter(has_text=f"program {SCRIPT}").first)\
        .to_be_visible()
    idle(tab)
    expect(tab.locator(EXCEPTION)).to_have_count(0)
    assert tab.locator("script", has_text="alert(1)").count() == 0
    tab.get_by_role("combobox", name="Site", exact=True).click()
    expect(tab.get_by_role("option", name=IMG, exact=True)).to_be_visible()
