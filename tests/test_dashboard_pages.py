"""Each dashboard page run as a user would (Streamlit AppTest) on the sample store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.filters import Filters
from analytics.store.connection import Store
from analytics.analyses.survival import analyse

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return ensure_store(tmp_path_factory.mktemp("pages") / "sample.duckdb")


@pytest.fixture
def app(db: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("OUTCOMES_DB", str(db))
    return AppTest.from_file(APP, default_timeout=120)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_survival_page_numbers_equal_the_analytics(app: AppTest, db: Path):
    app.switch_page("views/survival.py").run()
    assert not app.exception
    store = Store.open(db)
    expected = analyse(store, "retention")
    assert metric(app, "Participants followed") == f"{expected.durations.n:,}"
    assert metric(app, "Events") == f"{expected.durations.events:,}"
    table = app.dataframe[0].value
    assert table.median_days.tolist() == [g.median for g in expected.groups]


def test_survival_page_filters_and_comparison_change_the_numbers(app: AppTest, db: Path):
    app.switch_page("views/survival.py").run()
    before = metric(app, "Participants followed")
    app.sidebar.multiselect(key="program").select("Recovery Mentoring").run()
    assert not app.exception
    store = Store.open(db)
    one = analyse(store, "retention", filters=Filters(programs=("Recovery Mentoring",)))
    assert metric(app, "Participants followed") == f"{one.durations.n:,}" != before
    app.selectbox(key="by").select("age_band").run()
    assert not app.exception
    assert any("Log-rank test" in m.value for m in app.markdown)
    assert len(app.dataframe[0].value) == one.durations.frame.age_band.nunique()


def test_survival_page_sobriety_and_empty_filter(app: AppTest):
    app.switch_page("views/survival.py").run()
    app.sidebar.date_input(key="enrolled_from").set_value(__import__("datetime").date(2024, 4, 6)).run()
    app.sidebar.date_input(key="enrolled_to").set_value(__import__("datetime").date(2024, 4, 6)).run()
    assert not app.exception
    assert any("Nothing to show" in w.value for w in app.warning)


def test_engagement_retention_page_numbers_equal_the_analytics(app: AppTest, db: Path):
    from analytics.analyses.engagement import analyse_engagement
    app.switch_page("views/engagement_retention.py").run()
    assert not app.exception
    expected = analyse_engagement(Store.open(db), "retention")
    assert metric(app, "Participants") == f"{expected.n:,}"
    assert metric(app, "Person-weeks") == f"{expected.person_weeks:,}"
    assert any("immortal" in i.value or "Why the naive" in i.value for i in app.info)
    app.sidebar.multiselect(key="program").select("Online Recovery Community").run()
    assert not app.exception
    one = analyse_engagement(Store.open(db), "retention", filters=Filters(programs=("Online Recovery Community",)))
    assert metric(app, "Participants") == f"{one.n:,}" != f"{expected.n:,}"
