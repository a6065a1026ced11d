"""Engagement figures show exactly the numbers of the analysis they are built from.

Real analyses (retention and sobriety) on a store built from data/sample in a module-scoped
tmp folder; every assertion compares what a trace draws with the analysis's own results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from analytics.ingest.bootstrap import ensure_store
from analytics.charts.base import PALETTE, TEMPLATE_NAME
from analytics.analyses.engagement import EXPLANATION, TIERS, EngagementAnalysis, analyse_engagement
from analytics.charts.engagement import (CORRECTED_LABEL, NAIVE_LABEL, dose_response_figure, hazard_ratio_figure,
                                         landmark_km_figure, naive_vs_correct_figure)
from analytics.store.connection import Store
from tests.figures import banded_rows, note_text, one, traces, whole_curve

ENGAGEMENT = ["in_person_groups", "online_communities", "checkins", "mentoring"]


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    tmp: Path = tmp_path_factory.mktemp("engagement_charts")
    store = Store.open(ensure_store(tmp / "s.duckdb"), read_only=True)
    yield store
    store.close()


@pytest.fixture(scope="module", params=["retention", "sobriety"])
def analysis(request: pytest.FixtureRequest, sample_store: Store) -> EngagementAnalysis:
    return analyse_engagement(sample_store, request.param)


def whiskers(trace, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """The (lower, upper) ends of a trace's asymmetric error bars."""
    values = np.asarray(getattr(trace, axis), float)
    err = getattr(trace, f"error_{axis}")
    return values - np.asarray(err.arrayminus, float), values + np.asarray(err.array, float)


def assert_common_note(fig: go.Figure, a: EngagementAnalysis) -> str:
    note = note_text(fig)
    assert f"Outcome: {a.outcome}" in note
    assert f"n={a.n:,}" in note and f"events={a.events:,}" in note and f"person-weeks={a.person_weeks:,}" in note
    assert "not proof of cause" in note.lower()
    return note


def test_the_sample_gives_something_to_draw(analysis):
    assert [t.term for t in analysis.time_varying] == ENGAGEMENT
    assert [t.term for t in analysis.naive] == ENGAGEMENT
    assert [lm.day for lm in analysis.landmarks] == [30, 60, 90]
    assert all(lm.tiers for lm in analysis.landmarks)


# --- time-varying hazard ratios -----------------------------------------------------------

def test_hazard_ratios_are_the_time_varying_estimates_with_their_cis(analysis):
    fig = hazard_ratio_figure(analysis)
    hr = one(fig, "hr")
    np.testing.assert_allclose(hr.x, [t.estimate for t in analysis.time_varying])
    lower, upper = whiskers(hr, "x")
    np.testing.assert_allclose(lower, [t.ci[0] for t in analysis.time_varying])
    np.testing.assert_allclose(upper, [t.ci[1] for t in analysis.time_varying])
    assert list(fig.layout.yaxis.ticktext) == [
        "In-person group meetings in the previous week (per one more)",
            "Online community meetings in the previous week (per one more)", "Check-ins in the previous week (per one more)",
        "Mentoring sessions in the previous week (per one more)"]
    assert list(hr.customdata) == list(fig.layout.yaxis.ticktext)
    assert fig.layout.xaxis.type == "log"
    assert list(one(fig, "reference_line").x) == [1, 1]
    note = assert_common_note(fig, analysis)
    assert "previous week" in note and "models adjusted for program" in note


# --- landmark Kaplan-Meier ----------------------------------------------------------------

@pytest.mark.parametrize("day", [30, 60, 90])
def test_landmark_km_one_curve_per_tier_equal_to_the_km_tables(analysis, day):
    lm = next(m for m in analysis.landmarks if m.day == day)
    fig = landmark_km_figure(analysis, day)
    curves = traces(fig, "curve")
    assert [c.meta["group"] for c in curves] == [f"{t} meetings" for _, _, t in TIERS if t in lm.curves]
    for tier, km in lm.curves.items():
        curve = one(fig, "curve", group=f"{tier} meetings")
        x, y = whole_curve(fig, f"{tier} meetings")
        assert (x[0], y[0]) == (0.0, 1.0)
        np.testing.assert_allclose(x[1:], km.table.time)
        np.testing.assert_allclose(y[1:], km.table.surv)
        assert f"n={km.n:,}" in curve.name
        rows = banded_rows(km.table)
        ok = np.isfinite(rows.lower.to_numpy(float))
        np.testing.assert_allclose(one(fig, "ci_lower", group=f"{tier} meetings").y[1:], rows.lower[ok])
        np.testing.assert_allclose(one(fig, "ci_upper", group=f"{tier} meetings").y[1:], rows.upper[ok])
        # numbers at risk: everyone at day 0 after the landmark, then the KM's own counts
        at_risk = one(fig, "risk", group=f"{tier} meetings", column="at_risk")
        assert at_risk.x[0] == 0 and at_risk.text[0] == f"{km.n:,}"
        for t, text in zip(at_risk.x, at_risk.text):
            assert int(text.replace(",", "")) == int((np.repeat(km.table.time, km.table.n_event + km.table.n_censor)
                                                      >= t).sum())
    assert sum(km.n for km in lm.curves.values()) == lm.n
    assert f"Days after day {day}" in fig.layout.xaxis.title.text
    note = assert_common_note(fig, analysis)
    assert f"n={lm.n:,}, events={lm.events:,}" in note and f"day {day}" in note


def test_landmark_km_for_a_day_not_analysed_says_so(analysis):
    fig = landmark_km_figure(analysis, 45)
    assert not fig.data
    assert "No landmark analysis at day 45" in next(a.text for a in fig.layout.annotations if a.name == "message")
    assert_common_note(fig, analysis)


# --- dose-response --------------------------------------------------------------------------

def test_dose_response_tiers_are_the_landmark_tier_terms(analysis):
    fig = dose_response_figure(analysis)
    note = assert_common_note(fig, analysis)
    if not any(math.isfinite(t.ci[1]) and t.ci[0] > 0 for lm in analysis.landmarks for t in lm.tiers):
        # on the sample's retention the lowest tier present has no events: nothing is estimable,
        # which the figure says (the drawn case is checked on sobriety)
        assert not fig.data and any("No tier comparisons to show" in a.text for a in fig.layout.annotations)
        assert all(f"day {lm.day}: {t.term}" in note for lm in analysis.landmarks for t in lm.tiers)
        assert analysis.outcome == "retention"
        return
    assert fig.layout.yaxis.type == "log"
    labels = [f"{t} meetings" for _, _, t in TIERS]
    assert list(fig.layout.xaxis.ticktext) == labels
    for lm in analysis.landmarks:
        hr = one(fig, "hr", day=lm.day)
        drawn = [t for t in lm.tiers if math.isfinite(t.ci[1]) and t.ci[0] > 0]
        assert hr.meta["terms"] == [t.term for t in drawn]
        assert [c[0] for c in hr.customdata] == [t.term for t in drawn]
        np.testing.assert_allclose(hr.y, [t.estimate for t in drawn])
        lower, upper = whiskers(hr, "y")
        np.testing.assert_allclose(lower, [t.ci[0] for t in drawn])
        np.testing.assert_allclose(upper, [t.ci[1] for t in drawn])
        # each point sits at its tier; the reference (lowest tier present) is drawn at HR 1
        tiers = [t.term.split(" meetings vs ")[0] for t in drawn]
        assert [labels[round(x)] for x in hr.x] == [f"{t} meetings" for t in tiers]
        ref = one(fig, "reference", day=lm.day)
        assert list(ref.y) == [1.0] and lm.tiers[0].term.endswith(f" vs {ref.meta['tier']}")
        assert labels[round(ref.x[0])] == f"{ref.meta['tier']} meetings"
        assert f"Day {lm.day}: n={lm.n:,}, events={lm.events:,}" in note
        for t in lm.tiers:
            if t not in drawn:  # too few events for an estimate: named in the note instead
                assert f"day {lm.day}: {t.term}" in note


# --- naive vs corrected -------------------------------------------------------------------

def test_naive_and_corrected_both_drawn_and_labelled(analysis):
    fig = naive_vs_correct_figure(analysis)
    naive, corrected = one(fig, "naive"), one(fig, "corrected")
    assert naive.name == NAIVE_LABEL == "naive: total engagement vs time in program — BIASED (immortal time)"
    assert corrected.name == CORRECTED_LABEL == "corrected: previous week's engagement"
    for trace, terms, which in ((naive, analysis.naive, "naive"), (corrected, analysis.time_varying, "time_varying")):
        assert trace.meta["terms"] == ENGAGEMENT
        sd = analysis.exposure_sd[which]
        # per one SD of the exposure: HR ** SD (a total over follow-up, a weekly count)
        np.testing.assert_allclose(trace.x, [t.estimate ** sd[t.term] for t in terms])
        lower, upper = whiskers(trace, "x")
        np.testing.assert_allclose(lower, [t.ci[0] ** sd[t.term] for t in terms])
        np.testing.assert_allclose(upper, [t.ci[1] ** sd[t.term] for t in terms])
        assert list(trace.text) == [f"{t.estimate ** sd[t.term]:.2f}" for t in terms]
    # side by side: the same row per engagement type, naive just below the corrected one
    np.testing.assert_allclose(np.round(naive.y), np.round(corrected.y))
    assert all(n > c for n, c in zip(naive.y, corrected.y))
    assert list(fig.layout.yaxis.ticktext) == ["In-person group meetings", "Online community meetings", "Check-ins",
                                              "Mentoring sessions"]
    assert fig.layout.xaxis.type == "log"
    note = assert_common_note(fig, analysis)
    assert "per one standard deviation (SD) of their own exposure" in note
    assert f"{analysis.exposure_sd['naive']['in_person_groups']:.1f} in total" in note
    assert " ".join(EXPLANATION.split()[:40]) in " ".join(note.split())


# --- the look -------------------------------------------------------------------------------

def test_every_figure_uses_our_template_even_after_streamlit(analysis):
    import streamlit  # noqa: F401  (sets plotly's default template to "streamlit")

    assert pio.templates.default == "streamlit"
    ours = pio.templates[TEMPLATE_NAME]
    for fig in (hazard_ratio_figure(analysis), landmark_km_figure(analysis, 30), landmark_km_figure(analysis, 45),
                dose_response_figure(analysis), naive_vs_correct_figure(analysis)):
        assert fig.layout.template == ours
        assert list(fig.layout.template.layout.colorway) == list(PALETTE)
        assert '"$' not in fig.to_json()  # no LaTeX, nothing for MathJax to do
