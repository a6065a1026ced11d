"""Every chart on every page has its Download menu (Streamlit AppTest on the sample store): the
five buttons (PNG, SVG, PDF, CSV, XLSX) with unique keys, and each table file, built on click,
shows no count of 1-10 and states the method."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from analytics.publish import privacy
from analytics.ingest.bootstrap import ensure_store
from dashboard.common import DOWNLOAD_LABELS

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
# page -> the keys of its charts (st.plotly_chart key = downloads key), as drawn by default
PAGES = {
    "overview": ["weekly_trends"],
    "engagement": ["attendance", "weekday", "adherence", "caseloads"],
    "cohorts": ["cohort_heatmap", "cohort_trends"],
    "survival": ["km", "cox", "incidence"],  # compared by program, so the Cox model is drawn
    "engagement_retention": ["hr", "naive", "landmark_km", "dose"],
}
# the downloads whose counts of people are perturbed (cell key method) before suppression
PERTURBED_CSV = ("km_csv", "weekly_trends_csv", "adherence_csv", "cohort_heatmap_csv", "caseloads_csv", "cox_csv",
                 "cohort_trends_csv", "incidence_csv", "hr_csv", "naive_csv", "landmark_km_csv", "dose_csv")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """A copy of the sample store: clicks write audit entries."""
    tmp = tmp_path_factory.mktemp("downloads")
    built = ensure_store(tmp / "built.duckdb")
    shutil.copyfile(built, tmp / "s.duckdb")
    return tmp / "s.duckdb"


@pytest.fixture
def deferred(monkeypatch) -> dict[str, Callable[[], bytes]]:
    """The callables behind the download buttons, by element id (AppTest cannot click them)."""
    found: dict[str, Callable[[], bytes]] = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, *, element_id=""):
        found[element_id] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, element_id=element_id)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return found


@pytest.fixture
def app(db: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("OUTCOMES_DB", str(db))
    return AppTest.from_file(APP, default_timeout=120)


def run_page(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"views/{page}.py").run()
    if page == "survival":
        app.selectbox(key="by").select("program").run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize("view", PAGES)
def test_every_chart_has_its_five_downloads(app: AppTest, view: str, deferred):
    run_page(app, view)
    # the outreach model's calibration is drawn from participant-level predictions, for staff
    # only and not for release (like the outreach list): it has no publication downloads
    charts = [c.proto.id.rsplit("-", 1)[-1] for c in app.get("plotly_chart")]
    charts = [c for c in charts if c != "calibration"]
    assert charts == PAGES[view]
    buttons = [b for b in app.download_button if b.key != "outreach_download"]
    keys = [b.key for b in buttons]
    assert len(keys) == len(set(keys)) == 5 * len(charts)
    for chart in charts:
        assert {b.key: b.label for b in buttons if b.key.startswith(f"{chart}_")} == {
            f"{chart}_{fmt}": label for fmt, label in DOWNLOAD_LABELS.items()}
    popovers = [p.proto.id.rsplit("-", 1)[-1] for p in app.get("popover")]
    assert popovers == [f"{c}_downloads" for c in charts]


@pytest.mark.parametrize("view", PAGES)
def test_table_files_are_built_on_click_and_protected(app: AppTest, view: str, deferred):
    run_page(app, view)
    for button in app.download_button:
        if button.key.endswith("_csv"):
            data = deferred[button.proto.id]()
            assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, as Excel wants
            lines = [row[0] for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if len(row) == 1]
            perturbed = button.key in PERTURBED_CSV  # counts of people perturbed (cell key)
            assert privacy.method_statement(perturbed=perturbed) in lines, button.key

