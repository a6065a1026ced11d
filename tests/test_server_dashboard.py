"""Two dashboard processes on one PostgreSQL store while a nightly-style CLI import runs:
both serve signed-in pages during the import and show the imported data after it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from analytics.access import users
from analytics.analyses import quality
from analytics.ingest import synthetic
from analytics.ingest.importer import import_files
from analytics.store.connection import Store
from analytics.store.server import LOCKS
from tests.conftest import TODAY
from tests.pg import pg_db, pg_server  # noqa: F401  (fixtures)
from tests.test_browser import EXCEPTION, TIMEOUT_MS, VIEWPORT, chromium, idle, running_app  # noqa: F401
from tests.test_browser_auth import PASSWORD, heading, sign_in

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def night_batch(folder: Path) -> Path:
    """A second program's data: 1,500 participants whose IDs the sample does not use."""
    frames = synthetic.generate(participants=1500, seed=11)
    folder.mkdir()
    for name, frame in frames.items():
        frame["participant_id"] = "N-" + frame["participant_id"]
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def data_page(page: Page, *without_checkins: int) -> None:
    """Open the Data page; it shows one of the given counts of participants without a check-in."""
    page.locator('[data-testid="stSidebarNav"] a', has_text="Data").first.click()
    expect(heading(page, "Data")).to_be_visible()
    wording = "|".join(f"{n:,}" for n in without_checkins)
    expect(page.get_by_text(re.compile(f"Participants without any check-in: ({wording})\\."))).to_be_visible()
    idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)


def expected_after(batch: Path) -> int:
    """What the Data page shows after the night's batch: counted on an embedded store."""
    with Store.open(memory=True) as store:
        assert import_files(store, [SAMPLE, batch], today=TODAY).ok
        return len(quality.participants_without_checkins(store))


def test_two_dashboards_serve_pages_while_an_import_runs(pg_db, chromium: Browser, tmp_path):  # noqa: F811
    with Store.open(pg_db) as store:
        assert import_files(store, [SAMPLE], today=TODAY).ok
        users.add_user(store, "director", "director", PASSWORD)
        before = len(quality.participants_without_checkins(store))
    batch = night_batch(tmp_path / "night")
    with running_app(pg_db, tmp_path / "a.log") as url_a, running_app(pg_db, tmp_path / "b.log") as url_b:
        tabs = []
        for url in (url_a, url_b):
            context = chromium.new_context(viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            tabs.append(context.new_page())
        hold = psycopg.connect(pg_db, autocommit=True)  # the import waits on its lock until released
        hold.execute("SELECT pg_advisory_lock(%s)", [LOCKS["import"]])
        night = subprocess.Popen([sys.executable, "-m", "analytics", "import", str(batch), "--db", pg_db],
                                 cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for tab, url in zip(tabs, (url_a, url_b)):  # while the import has begun and waits
            sign_in(tab, type("S", (), {"url": url}), "director", "Recovery outcomes")
            data_page(tab, before)
        assert night.poll() is None
        hold.execute("SELECT pg_advisory_unlock(%s)", [LOCKS["import"]])
        for tab in tabs:  # while it writes (or just after): one data version or the other, never an error
            tab.locator('[data-testid="stSidebarNav"] a', has_text="Overview").first.click()
            expect(heading(tab, "Overview")).to_be_visible()
            data_page(tab, before, after_import := expected_after(batch))
        out, _ = night.communicate(timeout=600)
        hold.close()
        assert night.returncode == 0, out
        with Store.open(pg_db) as store:
            after = len(quality.participants_without_checkins(store))
            assert store.scalar("SELECT count(*) FROM participants") == 2300
        assert after == after_import > before
        for tab in tabs:  # each process loads the new data version into its DuckDB
            tab.locator('[data-testid="stSidebarNav"] a', has_text="Overview").first.click()
            expect(heading(tab, "Overview")).to_be_visible()
            data_page(tab, after)
        for tab in tabs:
            tab.context.close()
