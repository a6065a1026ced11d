"""What a funder reads on the Published charts page and in the report (issue 12, items 7 and 9):
survival past a group's follow-up is blank with a note, never 0.0%; every "<11" or "*" in a
table is explained in the caption under it; a blank promised by a caption is blank; and a
chart whose every value is suppressed says why instead of drawing bare axes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.access import roles as access
from analytics.access import sessions, users
from analytics.outcomes.definitions import OutcomeSettings, durations
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.publish import cellkey, report
from analytics.publish.formatting import caption, formatted
from analytics.stats.survival import kaplan_meier
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_data import small_store

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
T = 11
YEAR_2026 = Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30))
EIGHT_MONTHS = Period(dt.date(2026, 2, 1), dt.date(2026, 9, 30))  # enrolled Feb-Sep, data to Sep 30
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def as_the_cli():
    """Build reports as the command line does: an AppTest run in this thread leaves the
    dashboard's enforcement and acting user behind."""
    access.enforce(False)
    access.set_user(None)
    yield
    access.enforce(False)
    access.set_user(None)


@pytest.fixture(scope="module")
def young(tmp_path_factory) -> Store:
    """60 people of one program enrolled in 2026; 55 enrolled in the 8 months from February have
    sobriety follow-up, 19 of them followed 90 days and 6 followed 180 days."""
    return small_store(tmp_path_factory.mktemp("young"), {"Peer Support": 60}, 3)


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> Store:
    """Three programs of 40, 20 and 6: the 6 are hidden, and the 20 with them as a complement."""
    return small_store(tmp_path_factory.mktemp("three"), {"Peer Support": 40, "Mentoring": 20, "Online": 6}, 5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Store:
    return small_store(tmp_path_factory.mktemp("tiny"), {"Mentoring": 13}, 1)


def section(r: report.Report, title: str) -> report.Section:
    return next(s for s in r.sections if s.title == title)


def test_sobriety_past_follow_up_is_blank_with_a_note_never_0_percent(young: Store, tmp_path: Path):
    d = durations(young, "sobriety", OutcomeSettings(), Filters(enrolled_from=EIGHT_MONTHS.start,
                                                                 enrolled_to=EIGHT_MONTHS.end))
    followed = {day: int((d.frame.days >= day).sum()) for day in (90, 180, 365)}
    assert (d.n, followed) == (55, {90: 19, 180: 6, 365: 0})
    km = kaplan_meier(d.frame.days.to_numpy(), d.frame.event.to_numpy())
    assert km.at(180) is not None  # Kaplan-Meier has a value on 6 people: what the old table printed
    r = report.build(young, EIGHT_MONTHS)
    export = section(r, "Sobriety").exports[0]
    s90, at90 = r.life_tables["sobriety"].at("Peer Support", 90)
    followed_90 = d.frame.participant_id[d.frame.days >= 90]  # the 19 at risk, published with their cell-key noise
    assert at90 == cellkey.perturb(cell_key_secret(young), followed_90) and abs(at90 - 19) <= cellkey.MAX_NOISE
    assert 0 < s90 < 1
    shown = formatted(export.table.display()).loc["Peer Support"]
    assert shown["survival 90 (at risk)"] == f"{s90:.1%} ({at90})"
    assert shown["survival 180 (at risk)"] == "" and shown["survival 365 (at risk)"] == ""
    assert "Blank: not published (not followed that long, or a step would show fewer than 11 people)" in caption(
        export)
    assert "Never read a blank as 0%" in section(r, "Sobriety").text
    pdf = tmp_path / "young.pdf"
    pdf.write_bytes(report.render_pdf(r))
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    sobriety = next(p for p in pages if p.lstrip().startswith("Sobriety"))
    assert f"{s90:.1%} ({at90})" in sobriety and "0.0%" not in sobriety


def test_a_hidden_groups_row_is_blank_as_its_caption_says(three: Store):
    r = report.build(three, YEAR_2026)
    for title in ("Retention", "Sobriety"):
        lt = r.life_tables[title.lower()]
        assert set(lt.hidden) == {"Mentoring", "Online"}, title
        table = formatted(section(r, title).exports[0].table.display())
        assert table.loc["Online", "n"] == "<11" and table.loc["Mentoring", "n"] == "*"
        for group in lt.hidden:  # "nothing else": blank, not "*" where the section promises a blank
            assert table.loc[group].drop("n").tolist() == [""] * (len(table.columns) - 1), (title, group)
        assert "A blank cell is not published" in section(r, title).text


def markers_explained(table: pd.DataFrame, text: str) -> list[str]:
    """The markers in `table` its caption `text` leaves unexplained (a page caption escapes "*")."""
    cells = [str(v) for v in table.to_numpy().ravel()]
    text = text.replace(r"\*", "*")
    missing = []
    if any("<11" in v for v in cells) and '"<11": fewer than 11 people (1 to 10), not shown.' not in text:
        missing.append("<11")
    if any("*" in v for v in cells) and '"*": hidden, because' not in text:
        missing.append("*")
    return missing


def published_page(store: Store, period: Period, monkeypatch) -> AppTest:
    """The Published charts page for `period`, signed in as a grant writer (a store of one's own
    data asks for accounts)."""
    monkeypatch.setenv("OUTCOMES_DB", str(store.path))
    if users.load_user(store, "grant_writer") is None:
        users.add_user(store, "grant_writer", "grant_writer", PASSWORD)
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["session_token"] = sessions.start(store, users.load_user(store, "grant_writer"))
    at.switch_page("views/published.py").run()
    at.date_input(key="report_period").set_value((period.start, period.end)).run()
    assert not at.exception
    return at


@pytest.mark.parametrize("case", ["three", "tiny"])
def test_every_marker_on_the_published_page_is_explained_in_its_caption(case: str, request, monkeypatch):
    store = request.getfixturevalue(case)
    at = published_page(store, YEAR_2026, monkeypatch)
    captions = [c.value for c in at.caption][1:]  # the first states the method for the whole page
    captions = [c for c in captions if not c.startswith(("Small counts are hidden in every file", "Signed in as"))]
    tables = [d.value for d in at.dataframe]
    assert len(tables) == len(captions) == 8
    seen = set()
    for table, text in zip(tables, captions):
        assert markers_explained(table, text) == [], text[:80]
        seen |= {m for m in ("<11", "*") if any(m in str(v) for v in table.to_numpy().ravel())}
        assert not [v for v in table.to_numpy().ravel() if str(v) in ("None", "nan", "0.0%")]
    assert seen == {"<11", "*"}  # both markers occur, so both explanations were checked
    if case == "three":  # the captions say "see Methods": the page has them, as the PDF's appendix
        assert any("see Methods" in c for c in captions)
        headers = [h.value for h in at.main.header]
        assert headers[-1] == "Methods"
        assert "Protected life tables" in [h.value for h in at.subheader]
        assert any("Cutler-Ederer" in m.value for m in at.markdown)


def test_the_check_finds_an_unexplained_marker():
    table = pd.DataFrame({"n": ["<11", "*", "40"]})
    assert markers_explained(table, "n = 40 participants") == ["<11", "*"]


def message(fig: dict) -> str | None:
    return next((a["text"] for a in fig["layout"].get("annotations", []) if a.get("name") == "message"), None)


def test_a_chart_with_every_value_suppressed_says_why(tiny: Store, monkeypatch, tmp_path: Path):
    r = report.build(tiny, YEAR_2026)
    empty = {s.title for s in r.sections for e in s.exports if not e.figure.data}
    # 13 people: no life-table interval holds 0 or 11+ events, and every follow-up count is 1-10
    assert empty == {"Retention", "Sobriety", "Cohort comparison", "Follow-up rate", "Recovery capital change"}
    for s in r.sections:
        for e in s.exports:
            values = e.table.values.select_dtypes("number").drop(columns=list(e.table.counts), errors="ignore")
            if s.title in empty:  # nothing drawn because nothing but counts is published
                assert values.isna().all().all() or s.title == "Cohort comparison", s.title
                text = message(json.loads(e.figure.to_json()))
                assert text.startswith("Nothing to draw: every value of this chart would rest on fewer than 11")
                assert not e.figure.layout.xaxis.visible
    at = published_page(tiny, YEAR_2026, monkeypatch)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    said = [message(c) for c in charts if message(c)]
    assert len(said) == len(empty) and all("Nothing to draw" in m for m in said)
    pdf = tmp_path / "tiny.pdf"
    pdf.write_bytes(report.render_pdf(r))
    words = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                    check=True).stdout.split())
    assert words.count("Nothing to draw: every value of this chart would rest on fewer than 11") == len(empty)


def test_drawn_values_ignore_day_0_and_text():
    import plotly.graph_objects as go

    from analytics.charts.exports import draws_a_value

    curve = go.Scatter(x=[0], y=[1.0], meta={"role": "curve"})
    risk = go.Scatter(x=[0, 30], y=[0, 0], mode="text", text=["13", "12"])
    assert not draws_a_value(go.Figure([curve, risk, go.Bar(x=["a"], y=[np.nan])]))
    assert draws_a_value(go.Figure([go.Scatter(x=[0, 30], y=[1.0, 0.9], meta={"role": "curve"})]))
    assert draws_a_value(go.Figure([go.Bar(x=["a", "b"], y=[np.nan, 0.0])]))  # a published 0 is a value
