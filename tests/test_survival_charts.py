"""Survival figures show exactly the numbers of the analysis they are built from.

One real analysis on a store built from data/sample (module-scoped, in tmp); every
assertion compares what a trace draws with the analysis's own tables.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from analytics.ingest.bootstrap import ensure_store
from analytics.charts.base import PALETTE, TEMPLATE_NAME, template
from analytics.store.connection import Store
from tests.figures import banded_rows, note_text, one, traces, whole_curve
from analytics.stats.survival import kaplan_meier
from analytics.analyses.survival import SurvivalAnalysis, analyse
from analytics.charts.survival import cox_figure, forest_figure, incidence_figure, km_figure


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = ensure_store(tmp_path_factory.mktemp("charts") / "outcomes.duckdb")
    store = Store.open(path, read_only=True)
    yield store
    store.close()


@pytest.fixture(scope="module")
def sobriety(sample_store: Store) -> SurvivalAnalysis:
    return analyse(sample_store, "sobriety", by="program", adjust=("age_band", "primary_substance"))


@pytest.fixture(scope="module")
def retention(sample_store: Store) -> SurvivalAnalysis:
    return analyse(sample_store, "retention", by="program")


@pytest.fixture(scope="module")
def km(sobriety: SurvivalAnalysis) -> go.Figure:
    return km_figure(sobriety)


# --- Kaplan-Meier -------------------------------------------------------------------------

def test_km_one_step_curve_per_group_equal_to_the_km_table(sobriety, km):
    assert sobriety.curves.keys() == {"Community Peer Support", "Online Recovery Community",
                                      "Recovery Mentoring"}
    assert {t.meta["group"] for t in traces(km, "curve")} == set(sobriety.curves)
    assert len(traces(km, "curve")) == len(sobriety.curves)
    for name, curve in sobriety.curves.items():
        trace = one(km, "curve", group=name)
        assert trace.line.shape == "hv"
        x, y = whole_curve(km, name)
        assert (x[0], y[0]) == (0.0, 1.0)  # every curve starts at S(0) = 1
        np.testing.assert_allclose(x[1:], curve.table.time)
        np.testing.assert_allclose(y[1:], curve.table.surv)
        assert f"n={curve.n:,}" in trace.name


def test_km_ci_bands_are_the_log_log_limits_in_the_curve_colour(sobriety, km):
    for name, curve in sobriety.curves.items():
        upper, lower = one(km, "ci_upper", group=name), one(km, "ci_lower", group=name)
        rows = banded_rows(curve.table)
        finite = rows[rows.lower.notna() & rows.upper.notna()]
        np.testing.assert_allclose(upper.y[1:], finite.upper)
        np.testing.assert_allclose(lower.y[1:], finite.lower)
        assert lower.fill == "tonexty"
        assert km.data[km.data.index(lower) - 1] is upper  # fills up to its own upper edge
        assert lower.fillcolor.startswith("rgba(") and lower.fillcolor.endswith(",0.15)")
        rgb = one(km, "curve", group=name).line.color.lstrip("#")
        assert lower.fillcolor.startswith("rgba({},{},{},".format(*(int(rgb[i:i + 2], 16) for i in (0, 2, 4))))


def test_km_censor_marks_sit_on_the_curve_at_censoring_times(sobriety, km):
    for name, curve in sobriety.curves.items():
        marks = one(km, "censor", group=name)
        censored = curve.table[curve.table.n_censor > 0]
        assert len(censored) > 0
        np.testing.assert_allclose(marks.x, censored.time)
        np.testing.assert_allclose(marks.y, censored.surv)
        assert marks.mode == "markers" and marks.marker.symbol == "cross-thin"


def test_km_median_lines_drop_to_the_x_axis_where_reached(sobriety, km):
    reached = [g for g in sobriety.groups if g.median is not None]
    assert reached, "the sample should reach the median in some group"
    for g in sobriety.groups:
        found = traces(km, "median", group=g.group)
        if g.median is None:
            assert not found
            continue
        (line,) = found
        assert list(line.x) == [g.median, g.median] and list(line.y) == [0.5, 0]
        assert line.line.dash == "dash"


def test_km_numbers_at_risk_equal_the_analysis_risk_table(sobriety, km):
    assert set(sobriety.risk.group) == set(sobriety.curves)
    for (group, column), sub in sobriety.risk.melt(
            id_vars=["group", "time"], value_vars=["at_risk", "events", "censored"],
            var_name="column").groupby(["group", "column"]):
        row = one(km, "risk", group=group, column=column)
        np.testing.assert_allclose(row.x, sub.time)
        assert [int(t.replace(",", "")) for t in row.text] == sub.value.tolist()
        assert row.xaxis == "x2" and row.yaxis == "y2"
    # the table's columns sit under the plot's x ticks
    assert list(km.layout.xaxis.tickvals) == sorted(sobriety.risk.time.unique())
    assert km.layout.xaxis2.matches == "x"


def test_km_title_and_note_state_outcome_definition_n_events_cutoff_method(sobriety, km):
    assert "sober" in km.layout.title.text.lower() and "program" in km.layout.title.text
    note = note_text(km)
    d = sobriety.durations
    assert d.describe() in note
    assert f"n={d.n:,}" in note and f"events={d.events:,}" in note
    assert str(d.cutoff) in note
    assert "95% CI, log-log" in note
    assert f"chi2 = {sobriety.logrank.chi2:.2f} on {sobriety.logrank.df} df" in note
    for why, n in d.left_out.items():
        assert f"{n:,} {why}" in note


def test_every_figure_uses_our_template_even_after_streamlit_is_imported(sobriety, retention):
    pytest.importorskip("streamlit")
    import streamlit  # noqa: F401  (sets plotly's default template to "streamlit")

    assert pio.templates.default == "streamlit"
    ours = pio.templates[TEMPLATE_NAME]
    for fig in (km_figure(sobriety), cox_figure(sobriety), forest_figure([]), incidence_figure(retention)):
        assert fig.layout.template == ours
        assert fig.layout.template.layout.paper_bgcolor == "white"
        assert list(fig.layout.template.layout.colorway) == list(PALETTE)
        assert '"$' not in fig.to_json()  # no LaTeX strings: nothing for MathJax to do
    assert template() == ours


def test_km_one_group(sample_store):
    single = analyse(sample_store, "sobriety")
    fig = km_figure(single)
    (curve,) = traces(fig, "curve")
    np.testing.assert_allclose(whole_curve(fig, "all")[1][1:], single.curves["all"].table.surv)
    assert curve.name.startswith("All participants")
    assert "Log-rank" not in note_text(fig)
    assert len(traces(fig, "risk")) == 3
    assert not [a for a in fig.layout.annotations if a.text == "<b>all</b>"]  # no group header


def test_km_group_without_follow_up_and_nothing_at_all(sobriety):
    empty = kaplan_meier(np.array([]), np.array([]))
    risk = pd.concat([sobriety.risk, pd.DataFrame({"time": [0, 90], "at_risk": 0, "events": 0, "censored": 0,
                                                   "group": "Nobody"})], ignore_index=True)
    fig = km_figure(dataclasses.replace(sobriety, curves={**sobriety.curves, "Nobody": empty}, risk=risk))
    assert not traces(fig, "curve", group="Nobody")
    assert len(traces(fig, "curve")) == 3
    assert list(one(fig, "risk", group="Nobody", column="at_risk").text) == ["0", "0"]

    nothing = dataclasses.replace(sobriety, curves={"Nobody": empty}, groups=[],
                                  risk=risk[risk.group == "Nobody"], logrank=None)
    fig = km_figure(nothing)
    assert not traces(fig, "curve")
    assert any(a.name == "message" for a in fig.layout.annotations)


# --- Forest plot --------------------------------------------------------------------------

HAND_MADE = [
    {"term": "program", "level": "Recovery Mentoring", "reference": "Community Peer Support",
     "hr": 0.62, "ci": [0.45, 0.85], "p": 0.003},
    {"term": "age_band", "level": "65+", "reference": "35-44", "hr": 1.8, "ci": [1.1, 2.9], "p": 0.02},
    {"term": "primary_substance", "level": "other", "reference": "alcohol", "hr": 1.05, "ci": [0.7, 1.6],
     "p": 0.8},
]


def test_forest_from_hand_made_terms():
    fig = forest_figure(HAND_MADE, note="sobriety; n=10", event="first reported use")
    hr = one(fig, "hr")
    np.testing.assert_allclose(hr.x, [t["hr"] for t in HAND_MADE])
    np.testing.assert_allclose(hr.error_x.array, [t["ci"][1] - t["hr"] for t in HAND_MADE])
    np.testing.assert_allclose(hr.error_x.arrayminus, [t["hr"] - t["ci"][0] for t in HAND_MADE])
    assert fig.layout.xaxis.type == "log"
    ref = one(fig, "reference_line")
    assert list(ref.x) == [1, 1]
    assert list(fig.layout.yaxis.ticktext) == ["program: Recovery Mentoring vs Community Peer Support",
                                               "age band: 65+ vs 35-44", "primary substance: other vs alcohol"]
    texts = [a.text for a in fig.layout.annotations]
    assert "0.62 (0.45 to 0.85), p = 0.003" in texts
    assert "not proof of cause" in note_text(fig) and "sobriety; n=10" in note_text(fig)


def test_forest_lists_but_does_not_draw_a_term_without_a_finite_hr():
    terms = [*HAND_MADE, {"term": "gender", "level": "other", "reference": "female", "hr": math.inf,
                          "ci": [0.0, math.inf], "p": None}]
    fig = forest_figure(terms)
    np.testing.assert_allclose(one(fig, "hr").x, [t["hr"] for t in HAND_MADE])
    assert len(fig.layout.yaxis.ticktext) == 4
    assert "not estimable" in [a.text for a in fig.layout.annotations]


def test_forest_from_the_real_cox_model(sobriety):
    assert sobriety.cox is not None, sobriety.warnings
    fig = cox_figure(sobriety)
    np.testing.assert_allclose(one(fig, "hr").x, [t.estimate for t in sobriety.cox.terms])
    assert fig.layout.yaxis.ticktext[0] == "program: {0.level} vs {0.reference}".format(sobriety.cox.terms[0])
    assert f"n={sobriety.durations.n:,}" in note_text(fig)
    # the same plot from the CLI's JSON shape
    np.testing.assert_allclose(one(forest_figure(sobriety.cox.to_json()["cox"]), "hr").x,
                               [t.estimate for t in sobriety.cox.terms])


def test_forest_without_terms_says_why(sample_store):
    assert any(a.name == "message" for a in forest_figure([]).layout.annotations)
    no_cox = analyse(sample_store, "sobriety")
    fig = cox_figure(no_cox)
    assert not traces(fig, "hr")
    assert "No Cox model: no covariates were given" in [a.text for a in fig.layout.annotations]


# --- Cumulative incidence -----------------------------------------------------------------

def test_incidence_curves_equal_the_incidence_table(retention):
    inc = retention.incidence
    assert {"dropped_out", "completed"} <= set(inc.exit_type)
    fig = incidence_figure(retention)
    assert len(traces(fig, "incidence")) == inc.groupby(["group", "exit_type"]).ngroups
    for (group, kind), sub in inc.groupby(["group", "exit_type"]):
        curve = one(fig, "incidence", group=group, exit_type=kind)
        assert curve.line.shape == "hv" and (curve.x[0], curve.y[0]) == (0.0, 0.0)
        np.testing.assert_allclose(curve.x[1:], sub.time)
        np.testing.assert_allclose(curve.y[1:], sub.incidence)
        np.testing.assert_allclose(one(fig, "ci_upper", group=group, exit_type=kind).y[1:], sub.upper)
        np.testing.assert_allclose(one(fig, "ci_lower", group=group, exit_type=kind).y[1:], sub.lower)
    # one legend entry per exit type, not per panel
    assert sorted(t.name for t in traces(fig, "incidence") if t.showlegend) == sorted(
        {"Dropped out", "Completed", "Other exit (transfer, custody, death, other)"} & {
            t.name for t in traces(fig, "incidence")})
    assert "not failing" in note_text(fig)
    assert f"n={retention.durations.n:,}" in note_text(fig)


def test_incidence_one_group_and_no_exits(sample_store, retention):
    single = analyse(sample_store, "retention")
    fig = incidence_figure(single)
    drop = one(fig, "incidence", group="all", exit_type="dropped_out")
    sub = single.incidence[single.incidence.exit_type == "dropped_out"]
    np.testing.assert_allclose(drop.y[1:], sub.incidence)

    none_yet = dataclasses.replace(retention, incidence=retention.incidence.iloc[0:0])
    fig = incidence_figure(none_yet)
    assert not traces(fig, "incidence")
    assert any(a.name == "message" for a in fig.layout.annotations)


def test_incidence_is_for_retention_only(sobriety):
    with pytest.raises(ValueError, match="retention"):
        incidence_figure(sobriety)


def test_figures_are_plain_plotly(tmp_path: Path, km):
    """A figure round-trips through JSON (what exports and the app receive)."""
    path = tmp_path / "km.json"
    km.write_json(path)
    again = pio.read_json(path)
    assert len(again.data) == len(km.data)


def test_groups_differ_by_line_style_not_colour_alone(sobriety, retention, km):
    """WCAG 1.4.1: each KM group and each exit type has its own dash as well as its own hue."""
    curves = traces(km, "curve")
    assert len(curves) >= 2
    styles = [(c.line.color, c.line.dash) for c in curves]
    assert len({dash for _, dash in styles}) == len(curves), styles
    incidence = [t for t in incidence_figure(retention).data if (t.meta or {}).get("role") == "incidence"]
    kinds = {t.meta["exit_type"]: t.line.dash for t in incidence}
    assert len(kinds) >= 2 and len(set(kinds.values())) == len(kinds), kinds


LONG_NAMES = ("Peer Support Groups of the Central Valley Region", "Recovery Mentoring Program North",
              "Recovery Mentoring Program South")


def _title_extents(fig: go.Figure) -> list[tuple[float, float, float]]:
    """(left, right, y) in pixels of each subplot title, measured with DejaVu Sans (the widest of the
    fonts the template names, and the one Chromium uses here) at the title's size, line by line."""
    from PIL import ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 16)
    margin = fig.layout.margin
    plot_px = fig.layout.width or 1000
    plot_px -= (margin.l if margin.l is not None else 70) + (margin.r if margin.r is not None else 30)
    out = []
    for a in fig.layout.annotations:
        if a.yanchor != "bottom" or a.xref != "paper" or a.name:  # subplot titles only
            continue
        width = max(font.getlength(line) for line in a.text.split("<br>"))
        out.append((a.x * plot_px - width / 2, a.x * plot_px + width / 2, a.y))
    return out


def test_incidence_panel_titles_do_not_overlap(retention):
    """Long program names side by side: each title is wrapped to its panel, so no two titles of a
    row meet (before: "...Region (n=90)" ran into "Recovery Mentoring Program North")."""
    names = dict(zip(sorted(retention.curves), LONG_NAMES))
    long = dataclasses.replace(retention, curves={names.get(g, g): km for g, km in retention.curves.items()},
                               incidence=retention.incidence.assign(group=retention.incidence.group.map(
                                   lambda g: names.get(g, g))))
    fig = incidence_figure(long)
    fig.update_layout(width=1000)
    titles = _title_extents(fig)
    assert len(titles) == len(long.curves) and any("<br>" in a.text for a in fig.layout.annotations)
    for y in {t[2] for t in titles}:
        row = sorted((left, right) for left, right, ty in titles if ty == y)
        assert all(a[1] < b[0] for a, b in zip(row, row[1:])), row
