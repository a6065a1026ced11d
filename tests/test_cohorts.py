"""Cohort retention table and check-in trends: hand-made records worked out by hand (the
same records as tests/test_kpis.py, repeated so the file stands alone), then the
committed sample against analytics.outcomes.definitions + analytics.stats.survival."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.analyses import cohorts
from analytics.charts import director as director_charts
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import OutcomeSettings, durations
from analytics.store.connection import Store
from analytics.stats.survival import kaplan_meier

from director_data import ATTENDANCE, CHECKINS, CUR, D, EVIL, MENTORING, PARTICIPANTS, PREV, hand, sample  # noqa: F401


def as_lists(frame: pd.DataFrame) -> dict[str, list]:
    return {c: [None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for c, row in zip(frame.index, frame.to_numpy(float).tolist())}


def test_month_days():
    assert [cohorts.month_day(m) for m in range(7)] == [0, 30, 61, 91, 122, 152, 183]


def test_cohort_table_by_hand(hand: Store):
    """Cutoff 2025-09-30, inactivity 30 days. Month m = day round(m x 30.44); a cell is known
    once every member was enrolled m months + 30 days before the cutoff."""
    r = cohorts.cohort_retention(hand, Filters(), "month")
    assert r.cutoff == D(2025, 9, 30)
    assert dict(r.n) == {"2025-03": 1, "2025-04": 1, "2025-05": 2, "2025-06": 3, "2025-07": 1, "2025-08": 1}
    # followed (cutoff - latest enrollment): 213, 182, 133, 106, 91, 46 days
    assert dict(r.complete_to) == {"2025-03": 6, "2025-04": 5, "2025-05": 3, "2025-06": 2, "2025-07": 2,
                                   "2025-08": 0}
    assert r.months == [0, 1, 2, 3, 4, 5, 6]
    assert as_lists(r.shares) == {
        # B1 completed on day 61: censored, never "lost"; nobody left to follow after that -> blank
        "2025-03": [1.0, 1.0, 1.0, None, None, None, None],
        # A1 still in; month 6 (day 183 + 30) not reached yet
        "2025-04": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, None],
        # A2 silent since day 1 (left), B3 transferred day 36 (censored): 1/2, then nobody followed
        "2025-05": [1.0, 0.5, None, None, None, None, None],
        # A3 dropped out day 18, B2 silent since day 24, C1 in: KM (2/3)(1/2)
        "2025-06": [1.0, pytest.approx(1 / 3), pytest.approx(1 / 3), None, None, None, None],
        # D2 silent since day 50: a real 0 at month 2, unlike the blanks
        "2025-07": [1.0, 1.0, 0.0, None, None, None, None],
        # D1 never came (left on day 0, known since 30 days have passed); month 1 not known yet
        "2025-08": [0.0, None, None, None, None, None, None],
    }
    risk = r.at_risk
    assert list(risk.loc["2025-06", [0, 1, 2]]) == [3, 1, 1]
    assert risk.loc["2025-06", 3] is pd.NA and risk.loc["2025-08", 0] == 1
    t = r.table()
    assert list(t.columns[:3]) == ["cohort", "n", "month_0"] and len(t) == 6


def test_cohort_table_by_quarter_and_max_months(hand: Store):
    r = cohorts.cohort_retention(hand, Filters(), "quarter", max_months=2)
    assert r.months == [0, 1, 2]
    assert dict(r.n) == {"2025-Q1": 1, "2025-Q2": 6, "2025-Q3": 2}
    # Q2: A2 left day 1 (6 at risk), A3 day 18 (5), B2 day 24 (4): (5/6)(4/5)(3/4) = 1/2;
    # B3 censored day 36, no event before day 61
    assert as_lists(r.shares) == {"2025-Q1": [1.0, 1.0, 1.0],
                                  "2025-Q2": [1.0, pytest.approx(0.5), pytest.approx(0.5)],
                                  "2025-Q3": [0.5, None, None]}  # D1 left on day 0, D2 still in then


def test_inactivity_setting_moves_the_known_edge(hand: Store):
    r = cohorts.cohort_retention(hand, Filters(), "month", settings=OutcomeSettings(inactivity_days=60))
    # 2025-08 (followed 46 days) is not known even at month 0 now; D1 is not yet counted as gone
    assert r.complete_to["2025-08"] == -1 and np.isnan(r.shares.loc["2025-08", 0])
    assert r.complete_to["2025-06"] == 1


def test_filters_and_empty(hand: Store):
    b = cohorts.cohort_retention(hand, Filters(programs=("B",)), "month")
    assert dict(b.n) == {"2025-03": 1, "2025-05": 1, "2025-06": 1, "2025-07": 1}
    assert b.shares.loc["2025-06", 0] == 1.0
    assert b.shares.loc["2025-06", 1] == 0.0  # B2 left on day 24
    for f in (Filters(programs=("nope",)), Filters(programs=(EVIL,)), Filters(sites=(EVIL,))):
        r = cohorts.cohort_retention(hand, f, "month")
        assert r.empty and r.shares.empty and r.table().empty
        assert cohorts.cohort_trends(hand, f, "month").empty
        fig = director_charts.cohort_heatmap(r)
        assert any(a.name == "message" for a in fig.layout.annotations)
    assert hand.scalar("SELECT count(*) FROM participants") == 9
    with pytest.raises(ValueError):
        cohorts.cohort_retention(hand, Filters(), "week")
    with pytest.raises(ValueError):
        cohorts.cohort_trends(hand, Filters(), "year; DROP TABLE participants")


def test_cohort_trends_by_hand(hand: Store):
    t = cohorts.cohort_trends(hand, Filters(), "month").set_index(["cohort", "month"])
    june0 = t.loc[("2025-06", 0)]
    # A3 (06-02 craving 6 mood 3; 06-10 used, 8, 5), C1 (06-05: 4, 2), B2 (06-25: mood 4)
    assert (june0.cohort_n, june0.participants, june0.checkins) == (3, 3, 4)
    assert june0.used_share == pytest.approx(1 / 3)
    assert june0.craving == pytest.approx((7 + 4) / 2) and june0.craving_n == 2
    assert june0.mood == pytest.approx((4 + 2 + 4) / 3) and june0.mood_n == 3
    assert bool(june0.complete)
    # C1 on day 79 (month 2) and day 119 (month 3, not complete: B2 enrolled 106 days before the cutoff)
    assert t.loc[("2025-06", 2)].participants == 1 and np.isnan(t.loc[("2025-06", 2)].craving)
    assert not bool(t.loc[("2025-06", 3)].complete)
    april2 = t.loc[("2025-04", 2)]  # A1 on days 63 and 77: craving 4 and blank
    assert (april2.checkins, april2.craving, april2.mood) == (2, 4.0, 4.0)
    assert t.loc[("2025-07", 1)].used_share == 1.0
    assert set(t.index.get_level_values(0)) == {"2025-04", "2025-05", "2025-06", "2025-07"}


def test_heatmap_leaves_unknown_cells_blank(hand: Store):
    r = cohorts.cohort_retention(hand, Filters(), "month")
    fig = director_charts.cohort_heatmap(r)
    heat, grey = fig.data[0], fig.data[1]  # at threshold 11 every known cell rests on 0-3 people: grey
    assert fig.layout.template.layout.font.family
    assert grey.meta["role"] == "thin" and all(v is None for row in heat.z for v in row)
    z = list(grey.z)
    assert z[4][2] == 0.0 and grey.text[4][2] == "(0)"  # 2025-07, month 2: a real 0, greyed (0 still followed)
    assert z[5][1] is None and z[0][3] is None  # not known: blank, not 0, not grey
    assert grey.text[5][1] == "" and heat.text[4][2] == ""
    assert heat.y[3] == "2025-06 (n=3)"
    note = " ".join(a.text.replace("<br>", " ") for a in fig.layout.annotations if a.name == "note")
    assert "not known, not lost" in note and "n=10" not in note and "n=9" in note
    trend = director_charts.cohort_trend_figure(cohorts.cohort_trends(hand, Filters(), "month"), "mood",
                                                by="month", min_participants=1)
    assert len(trend.data) == 4 and trend.layout.template.layout.font.family


# --- the committed sample ---------------------------------------------------------------

def test_sample_table_matches_outcomes_and_km(sample: Store):
    r = cohorts.cohort_retention(sample, Filters(), "quarter")
    d = durations(sample, "retention", OutcomeSettings()).frame
    assert dict(r.n) == d.cohort_quarter.value_counts().to_dict()
    for cohort in r.shares.index:
        sub = d[d.cohort_quarter == cohort]
        km = kaplan_meier(sub.days.to_numpy(), sub.event.to_numpy())
        followed = (pd.Timestamp(r.cutoff) - pd.to_datetime(sub.enrolled_on)).dt.days.min()
        for m in r.months:
            cell = r.shares.loc[cohort, m]
            if cohorts.month_day(m) + 30 > followed:
                assert np.isnan(cell), (cohort, m)  # not followed long enough: missing
            else:
                expected = km.at(cohorts.month_day(m))
                assert (np.isnan(cell) if expected is None else cell == pytest.approx(expected)), (cohort, m)
    # the known edge moves back one step per later cohort: a triangle, not zeros
    assert r.complete_to.is_monotonic_decreasing
    assert r.shares.notna().sum().sum() > 20 and (r.shares.fillna(1) >= 0).all().all()


def test_sample_trends(sample: Store):
    t = cohorts.cohort_trends(sample, Filters(), "quarter")
    assert t.used_share.between(0, 1).all()
    assert t.craving.dropna().between(0, 10).all() and t.mood.dropna().between(1, 5).all()
    assert (t.participants <= t.cohort_n).all()
    program = sample.scalar("SELECT min(program) FROM participants")
    fewer = cohorts.cohort_trends(sample, Filters(programs=(program,)), "quarter")
    assert fewer.participants.sum() < t.participants.sum()
