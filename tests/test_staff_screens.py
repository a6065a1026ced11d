"""Staff screens mark what rests on too few people (issue 12, item 10): run as a user would
(Streamlit AppTest) on the sample store, checked in the figure each page sends (its data,
colours, customdata and hover text), against what analytics/ returns."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics.analyses import activity
from analytics.analyses.cohorts import cohort_retention
from analytics.analyses.survival import analyse
from analytics.charts.director import THIN_GREY
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from tests.test_dashboard_pages import app, db  # noqa: F401  (fixtures: the sample store, AppTest of the app)

MENTORING = Filters(programs=("Recovery Mentoring",))
T = 11


def figure(at: AppTest, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(key))


def array(data) -> list:
    """A plotly array: a list, or {"dtype", "bdata"} (base64 of the numpy array)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def note(fig: dict) -> str:
    return next(a["text"] for a in fig["layout"]["annotations"] if a.get("name") == "note").replace("<br>", " ")


def test_cohort_heatmap_greys_cells_with_fewer_than_11_followed(app: AppTest, db: Path):
    app.switch_page("views/cohorts.py").run()
    app.segmented_control(key="cohort_by").set_value("month").run()
    app.sidebar.multiselect(key="program").select("Recovery Mentoring").run()
    assert not app.exception
    expected = cohort_retention(Store.open(db), MENTORING, "month")
    thin = expected.thin(T).to_numpy()
    at_risk = expected.at_risk.astype(float).to_numpy()
    assert thin.any() and (~thin & expected.shares.notna().to_numpy()).any()  # both kinds of cell occur
    fig = figure(app, "cohort_heatmap")
    heat, grey = fig["data"][0], next(t for t in fig["data"] if (t.get("meta") or {}).get("role") == "thin")
    assert grey["colorscale"] == [[0, THIN_GREY], [1, THIN_GREY]] and grey["showscale"] is False
    for i, row in enumerate(expected.shares.to_numpy() * 100):
        for j, share in enumerate(row):
            if thin[i, j]:  # grey, the share in brackets, the count on hover; not in the colour scale
                assert heat["z"][i][j] is None and heat["text"][i][j] == ""
                assert grey["z"][i][j] == 0 and grey["text"][i][j] == f"({share:.0f})"
                assert grey["customdata"][i][j] == (f"{share:.0f}% still in, but only {int(at_risk[i, j]):,} still "
                                                    f"followed: fewer than {T}, too few to read")
            else:
                assert grey["z"][i][j] is None and grey["text"][i][j] == ""
                assert (heat["z"][i][j] is None) == np.isnan(share)
    legend = [t for t in fig["data"] if (t.get("meta") or {}).get("role") == "thin_legend"]
    assert legend[0]["name"] == f"Fewer than {T} still followed (too few to read)"
    assert legend[0]["marker"]["color"] == THIN_GREY and legend[0]["showlegend"] is True
    assert f"Grey cells: fewer than {T} participants still followed" in note(fig)
    assert any("Grey in the chart" in c.value for c in app.caption)


def test_adherence_bands_that_cannot_occur_are_not_labelled_0_percent(app: AppTest, db: Path):
    period = Period(dt.date(2026, 8, 31), dt.date(2026, 9, 20))  # three whole weeks, Monday to Sunday
    assert len(period.full_weeks()) == 3
    app.switch_page("views/engagement.py").run()
    app.date_input(key="period").set_value((period.start, period.end)).run()
    assert not app.exception
    fig = figure(app, "adherence")
    bar = fig["data"][0]
    labels = dict(zip(array(bar["x"]), array(bar["text"])))
    # 3 weeks give shares 0, 1/3, 1/2, 2/3 and 1 only
    assert activity.possible_bands(period) == {"0%", "25-49%", "50-74%", "100%"}
    assert labels["1-24%"] == labels["75-99%"] == "not possible in this period"
    distribution = activity.adherence_distribution(Store.open(db), Filters(), period)
    for band, share in zip(distribution.band, distribution.share):
        if band in activity.possible_bands(period):
            assert labels[band] == f"{share:.0%}"
    hover = dict(zip(array(bar["x"]), array(bar["customdata"])))
    assert hover["1-24%"] == "(not possible in this period)"
    assert "With 3 whole weeks in the period, 1-24%, 75-99% cannot occur" in note(fig)


@pytest.mark.parametrize("weeks, bands", [(1, {"0%", "100%"}), (2, {"0%", "50-74%", "100%"}),
                                          (4, {"0%", "25-49%", "50-74%", "75-99%", "100%"}),
                                          (5, set(activity.ADHERENCE_BANDS)), (52, set(activity.ADHERENCE_BANDS))])
def test_possible_bands_are_those_some_participant_could_reach(weeks, bands):
    monday = dt.date(2026, 1, 5)
    period = Period(monday, monday + dt.timedelta(days=7 * weeks - 1))
    assert activity.possible_bands(period) == bands


def test_survival_curves_fade_where_fewer_than_11_remain_at_risk(app: AppTest, db: Path):
    app.switch_page("views/survival.py").run()
    app.selectbox(key="by").select("program").run()
    assert not app.exception
    expected = analyse(Store.open(db), "retention", by="program")
    fig = figure(app, "km")
    curves = {t["meta"]["group"]: t for t in fig["data"] if (t.get("meta") or {}).get("role") == "curve"}
    faded = {t["meta"]["group"]: t for t in fig["data"] if (t.get("meta") or {}).get("role") == "thin"}
    assert set(curves) == set(expected.curves) and faded  # the sample's curves all run out of people
    for name, km in expected.curves.items():
        at_risk = [km.n, *km.table.n_risk]
        solid = array(curves[name]["customdata"])
        assert min(solid) >= T  # the solid part rests on at least 11 at every step
        if min(at_risk) >= T:
            assert name not in faded
            continue
        thin = faded[name]
        tail = array(thin["customdata"])
        assert tail[0] == solid[-1] and all(n < T for n in tail[1:]) and solid + tail[1:] == at_risk
        assert array(thin["x"])[0] == array(curves[name]["x"])[-1]  # joined at the last solid point
        assert thin["line"]["color"].startswith("rgba(") and thin["line"]["color"].endswith(",0.4)")
        assert thin["line"]["dash"] == "dot" and f"fewer than {T}, too few to read" in thin["hovertemplate"]
        band = [t for t in fig["data"] if (t.get("meta") or {}).get("role") == "ci_upper"
                and t["meta"]["group"] == name]
        assert max(array(band[0]["x"])) <= array(thin["x"])[0]  # no band over the faded part
    assert f"Faded dotted line, no band: fewer than {T} still at risk" in note(fig)
