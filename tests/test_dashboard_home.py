"""The home page, run as a user would (Streamlit AppTest), on a store built at first start."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest.bootstrap import SAMPLE_DIR, ensure_store
from analytics.store.connection import Store
from analytics.analyses.summary import store_summary

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def fresh_db(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "first-start.duckdb"
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    monkeypatch.setenv("OUTCOMES_DEMO", "1")  # asked for: only the default store is built unasked
    return path


def test_first_start_builds_the_store_from_the_sample_and_shows_it(fresh_db: Path):
    assert not fresh_db.exists()
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert fresh_db.exists()
    store = Store.open(fresh_db)  # same process as the app: same configuration, shared database
    summary = store_summary(store)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Participants"] == f"{summary.counts['participants']:,}"
    assert metrics["Meetings attended"] == f"{summary.counts['attendance']:,}"
    assert metrics["Check-ins"] == f"{summary.counts['checkins']:,}"
    assert metrics["Mentoring sessions"] == f"{summary.counts['mentoring']:,}"
    assert any("synthetic sample" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert sorted(table["Program"]) == sorted(summary.programs.program)
    assert table["Participants"].sum() == summary.counts["participants"]
    assert any("Batch 1" in m.value and "bundled sample" in m.value for m in at.markdown)


def test_empty_store_says_how_to_load_data(fresh_db: Path):
    Store.open(fresh_db).close()
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert any("store is empty" in w.value for w in at.warning)
    assert not at.metric


def test_bootstrap_leaves_no_half_store_when_the_sample_is_broken(tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "participants.csv").write_text("participant_id,program\nP-1,A\n")
    target = tmp_path / "s.duckdb"
    with pytest.raises(Exception, match="did not import"):
        ensure_store(target, sample_dir=broken)
    assert list(tmp_path.glob("s.duckdb*")) == []


def test_sample_dir_is_committed_in_the_import_format():
    assert sorted(p.name for p in SAMPLE_DIR.glob("*.csv")) == [
        "assessments.csv", "attendance.csv", "checkins.csv", "mentoring.csv", "participants.csv"]


def test_a_mistyped_store_path_is_refused_not_built_as_an_open_demo(tmp_path: Path, monkeypatch):
    """Issue 15: only the default store (or one asked for with OUTCOMES_DEMO=1) is built from
    the sample; any other missing path says so instead of serving an open demo as admin."""
    missing = tmp_path / "typo" / "outcome.duckdb"
    monkeypatch.setenv("OUTCOMES_DB", str(missing))
    monkeypatch.delenv("OUTCOMES_DEMO", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    shown = " ".join(e.value for e in at.error) + " ".join(str(x.value) for x in at.exception)
    assert f"no store at {missing}" in shown
    assert not missing.exists() and not at.metric
