"""The Overview, Engagement, Cohorts and Data pages run as a user would (Streamlit AppTest)
on the sample store: every number checked on a page equals what analytics/ returns.

The Data page's upload is driven through AppTest's own file_uploader (supported since
Streamlit 1.5x); the import tests run on a copy of the store so the other tests see the
sample unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.analyses import activity, outreach
from analytics.access import sessions, users
from analytics.ingest.bootstrap import ensure_store
from analytics.analyses.cohorts import cohort_retention
from analytics.outcomes.filters import Filters
from analytics.ingest.importer import import_files
from analytics.analyses.kpis import overview
from analytics.outcomes.period import Period, default_period
from analytics.store.connection import Store

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGES = {"overview": "Overview", "engagement": "Engagement", "cohorts": "Cohorts", "data": "Data"}
MENTORING = Filters(programs=("Recovery Mentoring",))
# a program and a site that never go together in the sample: an empty selection
EMPTY = {"program": ["Online Recovery Community"], "site": ["Downtown"]}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    """The sample store, and an untouched copy of it for the import tests to copy again."""
    tmp = tmp_path_factory.mktemp("director_pages")
    db = ensure_store(tmp / "s.duckdb")
    assert not db.with_name(db.name + ".wal").exists()  # closed and checkpointed: safe to copy
    pristine = tmp / "pristine.duckdb"
    shutil.copyfile(db, pristine)
    return db, pristine


@pytest.fixture(scope="module")
def store(stores) -> Store:
    return Store.open(stores[0])  # same process as the app: the same database instance


@pytest.fixture
def app(stores, monkeypatch) -> AppTest:
    monkeypatch.setenv("OUTCOMES_DB", str(stores[0]))
    return AppTest.from_file(APP, default_timeout=120)


@pytest.fixture
def copy(stores, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the sample store, which the app under test uses."""
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(stores[1], path)
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    return path


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


TABLES = {  # st.dataframe sends no key without selections: a table is known by its columns
    "outreach_table": {"rank", "participant_id", "risk_28d"},
    "outreach_terms": {"term", "hazard ratio"},
    "caseload_table": {"mentor_id", "active_mentees"},
    "cohort_table": {"cohort", "n", "month_0"},
    "import_problems": {"file", "row", "column", "value", "problem"},
    "import_counts": {"table", "rows", "new", "updated", "unchanged"},
    "import_history": {"batch_id", "file_name", "sha256"},
}


def table(at: AppTest, name: str):
    return next(d.value for d in at.dataframe if TABLES[name] <= set(d.value.columns))


def figure(at: AppTest, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(key))


def note(fig: dict) -> str:
    return next(a["text"] for a in fig["layout"]["annotations"] if a.get("name") == "note").replace("<br>", " ")


def choose_empty_selection(at: AppTest) -> None:
    at.sidebar.multiselect(key="program").select(EMPTY["program"][0]).run()
    at.sidebar.multiselect(key="site").select(EMPTY["site"][0]).run()


def shown(k) -> str:
    """How the Overview page writes a KPI's value."""
    if k.kind == "count":
        return f"{k.current:,}"
    if k.current is None:
        return "not known yet" if k.key.startswith("retention") else "no whole week"
    return f"{k.current:.1%}"


# --- every page -----------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(app: AppTest, page: str):
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception
    assert app.title[0].value == PAGES[page]
    assert app.sidebar.multiselect(key="program")  # the shared filters are there


@pytest.mark.parametrize("page", ["overview", "engagement", "cohorts", "data"])
def test_an_empty_selection_says_so(app: AppTest, page: str):
    app.switch_page(f"views/{page}.py").run()
    choose_empty_selection(app)
    assert not app.exception
    messages = [w.value for w in app.warning] + [i.value for i in app.info]
    if page == "engagement":  # each section says it has nothing, rather than drawing empty charts
        assert not app.get("plotly_chart")
        assert any("No meetings attended" in m for m in messages)
        assert any("No active participant matches the filters" in m for m in messages)
    else:
        assert any("Nothing to show" in m for m in messages)


# --- Overview -------------------------------------------------------------------------

def test_overview_metrics_equal_the_kpis_and_follow_the_filters(app: AppTest, store: Store):
    app.switch_page("views/overview.py").run()
    period = default_period(store)
    everyone = overview(store, Filters(), period)
    for k in everyone.kpis.values():
        assert metric(app, k.label) == shown(k), k.key
    active = everyone.kpis["active"]
    assert next(m.delta for m in app.metric if m.label == active.label).startswith(f"{active.change:+,}")
    # retention of the last 28 days is not known yet: the page shows the latest known cohort and says which
    r30 = everyone.kpis["retention_30"]
    assert r30.current is not None and r30.window.end == everyone.cutoff - dt.timedelta(days=60)
    assert any(f"Of {r30.current_n:,} enrolled {r30.window.start} to {r30.window.end}, the latest 28 days whose "
               f"day 30 is known" in c.value for c in app.caption)
    assert figure(app, "weekly_trends")["layout"]["template"]["layout"]["paper_bgcolor"] == "white"

    app.sidebar.multiselect(key="program").select("Recovery Mentoring").run()
    assert not app.exception
    one = overview(store, MENTORING, period)
    assert metric(app, "Active participants") == f"{one.kpis['active'].current:,}" != f"{active.current:,}"
    for k in one.kpis.values():
        assert metric(app, k.label) == shown(k), k.key


def test_overview_period_is_chosen_on_the_page(app: AppTest, store: Store):
    app.switch_page("views/overview.py").run()
    period = Period(dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    app.date_input(key="period").set_value((period.start, period.end)).run()
    assert not app.exception
    expected = overview(store, Filters(), period)
    for k in expected.kpis.values():
        assert metric(app, k.label) == shown(k), k.key
    assert expected.kpis["retention_90"].current is not None  # long enough ago to be known
    assert any("2024-10-03 to 2024-12-31" in c.value for c in app.caption)  # the previous period


# --- Engagement -----------------------------------------------------------------------

def test_outreach_list_equals_the_analytics_and_follows_top_and_filters(app: AppTest, store: Store):
    app.switch_page("views/engagement.py").run()
    assert not app.exception
    expected = outreach.outreach(store, Filters())
    assert expected.model.kind == "fitted"
    ranked = expected.participants
    shown_list = table(app, "outreach_table")
    assert shown_list.participant_id.tolist() == ranked.participant_id.head(50).tolist()
    assert shown_list.risk_28d.tolist() == ranked.risk_28d.head(50).tolist()
    assert shown_list.reasons.tolist() == ["; ".join(r) for r in ranked.reasons.head(50)]
    assert metric(app, "Active participants, ranked") == f"{len(ranked):,}"
    button = app.download_button(key="outreach_download")
    assert button.label == "Download outreach list (CSV)"
    assert any(f"Not in the list: {expected.silent_no_exit:,} participants" in c.value for c in app.caption)
    # the rule, the data date and the track record, with the numbers of the analysis
    assert any(expected.rule in c.value and str(expected.as_of) in c.value for c in app.caption)
    b = expected.backtest
    assert metric(app, "Model: AUC") == f"{b.model.auc.estimate:.3f}"
    assert metric(app, "Longest silent first: AUC") == f"{b.days_silent.auc.estimate:.3f}"
    assert metric(app, "Model minus silent: AUC") == f"{b.difference.estimate:+.3f}"
    assert any(f"95% CI {b.model.auc.ci[0]:.3f}-{b.model.auc.ci[1]:.3f}; of the top 20 flagged, "
               f"{b.model.top20_left:.1f} left" in c.value for c in app.caption)
    terms = table(app, "outreach_terms")
    assert terms["hazard ratio"].tolist() == [t.estimate for t in expected.model.terms]

    app.number_input(key="outreach_top").set_value(10).run()
    assert table(app, "outreach_table").participant_id.tolist() == ranked.participant_id.head(10).tolist()

    app.sidebar.multiselect(key="program").select("Recovery Mentoring").run()
    assert not app.exception
    mentoring = outreach.outreach(store, MENTORING).participants
    assert table(app, "outreach_table").participant_id.tolist() == mentoring.participant_id.head(10).tolist()
    assert set(mentoring.program) == {"Recovery Mentoring"}


def test_engagement_charts_agree_with_the_overview(app: AppTest, store: Store):
    app.switch_page("views/engagement.py").run()
    period = default_period(store)
    meetings = overview(store, Filters(), period).kpis["meetings"].current
    assert f"Total: {meetings:,} meetings" in note(figure(app, "attendance"))
    caseloads = activity.mentor_caseloads(store, Filters(), period)
    assert table(app, "caseload_table").mentor_id.tolist() == caseloads.mentor_id.tolist()
    app.segmented_control(key="split").set_value("modality").run()
    app.segmented_control(key="freq").set_value("month").run()
    assert not app.exception
    fig = figure(app, "attendance")
    assert fig["layout"]["title"]["text"] == "Meetings attended per month, by modality"
    assert f"Total: {meetings:,} meetings" in note(fig)


# --- Cohorts --------------------------------------------------------------------------

def test_cohort_table_equals_the_analytics_and_follows_unit_and_filters(app: AppTest, store: Store):
    app.switch_page("views/cohorts.py").run()
    assert not app.exception
    for by, filters in (("quarter", Filters()), ("month", Filters()), ("month", MENTORING)):
        if by == "month" and not filters.programs:
            app.segmented_control(key="cohort_by").set_value("month").run()
        if filters.programs:
            app.sidebar.multiselect(key="program").select("Recovery Mentoring").run()
        assert not app.exception
        expected = cohort_retention(store, filters, by)
        got = table(app, "cohort_table")
        assert got.cohort.tolist() == expected.n.index.tolist()
        assert got.n.tolist() == expected.n.tolist()
        shares = expected.shares
        for m in shares.columns:  # not known yet = blank, never 0
            cells = got[f"month_{m}"].tolist()
            assert cells == ["" if pd.isna(v) else f"{v:.0%}" for v in shares[m]]
        assert figure(app, "cohort_heatmap")["data"][0]["type"] == "heatmap"
    app.segmented_control(key="measure").set_value("craving").run()
    assert not app.exception
    assert figure(app, "cohort_trends")["layout"]["yaxis"]["title"]["text"] == "Mean craving"


# --- Data -----------------------------------------------------------------------------

def count(path: Path, sql: str) -> int:
    return Store.open(path).scalar(sql)


BAD_ATTENDANCE = (b"participant_id,attended_on,meeting_type,modality,minutes\n"
                  b"P-NOBODY,2026-09-01,aa,in_person,60\n"
                  b"P-0032DC,2026-13-45,aa,in_person,60\n")
NEW_PARTICIPANT = (b"participant_id,program,site,enrolled_on\n"
                   b"P-NEW001,Recovery Mentoring,Downtown,2026-09-01\n")
NEW_ATTENDANCE = (b"participant_id,attended_on,meeting_type,modality,minutes\n"
                  b"P-NEW001,2026-09-02,aa,in_person,60\n")


def test_data_page_shows_every_problem_and_imports_nothing(copy: Path, tmp_path: Path):
    before = (count(copy, "SELECT count(*) FROM participants"), count(copy, "SELECT count(*) FROM attendance"),
              count(copy, "SELECT count(*) FROM import_batches"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/data.py").run()
    at.file_uploader[0].set_value([("participants.csv", NEW_PARTICIPANT, "text/csv"),
                                   ("attendance.csv", BAD_ATTENDANCE, "text/csv")]).run()
    at.button(key="import").click().run()
    assert not at.exception
    assert any("Nothing was imported" in e.value for e in at.error)
    problems = table(at, "import_problems")
    assert problems.columns.tolist() == ["file", "row", "column", "value", "problem"]
    # the same problems as the importer reports for these files (a dry run writes nothing)
    for name, content in (("participants.csv", NEW_PARTICIPANT), ("attendance.csv", BAD_ATTENDANCE)):
        (tmp_path / name).write_bytes(content)
    expected = import_files(Store.open(copy), [tmp_path / "participants.csv", tmp_path / "attendance.csv"],
                            dry_run=True).problems
    assert [(r.file, r.row, r.problem) for r in problems.itertuples()] == [(p.file, p.row, p.problem)
                                                                           for p in expected]
    assert {"P-NOBODY", "2026-13-45"} <= set(problems.value)
    assert any(b.label == "Download the problem report (CSV)" for b in at.download_button)
    after = (count(copy, "SELECT count(*) FROM participants"), count(copy, "SELECT count(*) FROM attendance"),
             count(copy, "SELECT count(*) FROM import_batches"))
    assert after == before


def test_data_page_imports_a_good_file_and_every_page_sees_it(copy: Path):
    participants = count(copy, "SELECT count(*) FROM participants")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/data.py").run()
    history = table(at, "import_history")
    at.file_uploader[0].set_value([("participants.csv", NEW_PARTICIPANT, "text/csv"),
                                   ("attendance.csv", NEW_ATTENDANCE, "text/csv")]).run()
    at.button(key="import").click().run()
    assert not at.exception
    # the store now holds more than the sample: the demo is over, everyone signs in
    assert any("users add NAME --role admin" in w.value for w in at.warning)
    with Store.open(copy) as store:  # as if signed in (tests/test_auth.py signs in for real)
        users.add_user(store, "root", "admin", "a long enough password")
        at.session_state["session_token"] = sessions.start(store, users.load_user(store, "root"))
    at.run()
    at.switch_page("views/data.py").run()
    assert any("Imported batch 2" in s.value for s in at.success)
    counts = table(at, "import_counts").set_index("table")
    assert counts.loc["participants", "new"] == 1 and counts.loc["attendance", "new"] == 1
    assert count(copy, "SELECT count(*) FROM participants") == participants + 1
    assert not at.file_uploader[0].value  # emptied: those files are in
    assert len(table(at, "import_history")) == len(history) + 2
    at.switch_page("views/home.py").run()  # cached results are keyed on the last import
    assert metric(at, "Participants") == f"{participants + 1:,}"
