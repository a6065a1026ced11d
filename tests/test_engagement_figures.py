"""Engagement figures carry the analysis' numbers, our template and a note with n and events."""

from __future__ import annotations

import numpy as np
import pytest

from analytics import engagement_figures as figs
from analytics.bootstrap import ensure_store
from analytics.engagement import analyse_engagement
from analytics.store import Store


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    with Store.open(ensure_store(tmp_path_factory.mktemp("ef") / "s.duckdb"), read_only=True) as store:
        return analyse_engagement(store, "retention")


def note(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_hazard_ratios(analysis):
    fig = figs.hazard_ratio_figure(analysis)
    hr = next(t for t in fig.data if (t.meta or {}).get("role") == "hr")
    np.testing.assert_allclose(hr.x, [t.estimate for t in analysis.time_varying])
    np.testing.assert_allclose(np.array(hr.x) + np.array(hr.error_x.array), [t.ci[1] for t in analysis.time_varying])
    assert fig.layout.template.layout.font.family and f"n={analysis.n:,}" in note(fig)


def test_naive_vs_corrected(analysis):
    fig = figs.naive_vs_correct_figure(analysis)
    roles = {t.meta["role"]: t for t in fig.data}
    np.testing.assert_allclose(roles["naive"].x, [t.estimate for t in analysis.naive])
    np.testing.assert_allclose(roles["corrected"].x, [t.estimate for t in analysis.time_varying])
    assert "BIASED" in roles["naive"].name and "BIASED" in note(fig)


def test_landmark_curves_and_dose_response(analysis):
    lm = analysis.landmarks[0]
    fig = figs.landmark_km_figure(analysis, lm.day)
    curves = [t for t in fig.data if (t.meta or {}).get("role") == "curve"]
    assert len(curves) == len(lm.curves)
    for trace, km in zip(curves, lm.curves.values()):
        assert set(np.round(trace.y, 12)) == set(np.round([1.0, *km.table.surv], 12))
    dose = figs.dose_response_figure(analysis)
    for trace in dose.data:
        day = trace.meta["day"]
        tiers = next(m for m in analysis.landmarks if m.day == day).tiers
        np.testing.assert_allclose(trace.y, [t.estimate for t in tiers])
    assert "Nobody to analyse" in note(figs.landmark_km_figure(analysis, 999))
