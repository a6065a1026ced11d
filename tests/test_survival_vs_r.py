"""Kaplan-Meier, medians, RMST, log-rank and cumulative incidence agree with R's survival."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from analytics.stats import competing
from analytics.stats import survival
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.definitions import durations
from analytics.store.connection import Store
from rsupport import run_r

pytestmark = pytest.mark.r

REL = 1e-9

KM_SCRIPT = """
f <- survfit(Surv(days, event) ~ group, data = d, conf.type = "log-log")
tab <- summary(f, rmean = 365)$table
out("table", data.frame(group = sub("group=", "", rownames(tab)), n = tab[, "records"],
    events = tab[, "events"], median = tab[, "median"], lcl = tab[, "0.95LCL"], ucl = tab[, "0.95UCL"],
    rmean = tab[, "rmean"], rmean_se = tab[, "se(rmean)"]))
s <- summary(f, times = c(30, 90, 180, 365))
out("times", data.frame(group = sub("group=", "", as.character(s$strata)), time = s$time, surv = s$surv,
    lower = s$lower, upper = s$upper))
out("logrank", data.frame(chisq = survdiff(Surv(days, event) ~ group, data = d)$chisq))
if ("stratum" %in% names(d))
    out("strat", data.frame(chisq = survdiff(Surv(days, event) ~ group + strata(stratum), data = d)$chisq))
"""


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory) -> Store:
    path = ensure_store(tmp_path_factory.mktemp("sample") / "sample.duckdb")
    store = Store.open(path, read_only=True)
    yield store
    store.close()


def simulated(seed: int = 3, n: int = 300) -> pd.DataFrame:
    """Exponential times rounded to whole days (many ties, some day-0 events), 3 groups."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n)
    rate = np.select([group == "a", group == "b"], [1 / 120, 1 / 80], 1 / 60)
    t = np.floor(rng.exponential(1 / rate))
    c = np.floor(rng.uniform(0, 400, n))
    return pd.DataFrame({"days": np.minimum(t, c).astype(int), "event": t <= c, "group": group,
                         "stratum": rng.choice(["x", "y"], n)})


def datasets(store: Store) -> dict[str, pd.DataFrame]:
    ret = durations(store, "retention").frame
    sob = durations(store, "sobriety").frame
    return {
        "retention by program": ret.assign(group=ret.program, stratum=ret.age_band),
        "sobriety by substance": sob.assign(group=sob.primary_substance, stratum=sob.program),
        "simulated with ties and day 0": simulated(),
    }


def ours(frame: pd.DataFrame) -> dict[str, survival.GroupSummary]:
    return {g: survival.summarize_group(g, survival.kaplan_meier(s.days, s.event)) for g, s in frame.groupby("group")}


def close(a: float | None, b: float) -> bool:
    if a is None:
        return bool(np.isnan(b))
    return bool(np.isclose(a, b, rtol=REL, atol=1e-12))


@pytest.mark.parametrize("name", ["retention by program", "sobriety by substance", "simulated with ties and day 0"])
def test_km_medians_survival_rmst_logrank_match_r(name: str, sample_store: Store, tmp_path: Path):
    frame = datasets(sample_store)[name][["days", "event", "group", "stratum"]]
    r = run_r(KM_SCRIPT, frame, tmp_path)
    assert len(r["table"]) == frame.group.nunique() >= 2 and len(r["times"]) >= 6
    mine = ours(frame)
    for row in r["table"].itertuples():
        g = mine[row.group]
        assert (g.n, g.events) == (row.n, row.events)
        assert close(g.median, row.median) and close(g.median_ci[0], row.lcl) and close(g.median_ci[1], row.ucl), (
            row.group, g.median, g.median_ci, row)
        if g.rmst["value"] is not None:  # ours is None when follow-up ends before 365
            se = (g.rmst["ci"][1] - g.rmst["value"]) / survival.Z95
            assert close(g.rmst["value"], row.rmean) and close(se, row.rmean_se)
    for row in r["times"].itertuples():
        km = survival.kaplan_meier(frame.days[frame.group == row.group], frame.event[frame.group == row.group])
        assert close(km.at(row.time), row.surv)
        at = km.table[km.table.time <= row.time].iloc[-1]
        assert close(at.lower, row.lower) and close(at.upper, row.upper)
    test = survival.logrank(frame.days, frame.event, frame.group)
    assert close(test.chi2, r["logrank"].chisq[0]) and test.df == frame.group.nunique() - 1
    strat = survival.logrank(frame.days, frame.event, frame.group, frame.stratum)
    assert close(strat.chi2, r["strat"].chisq[0])


def test_km_agrees_with_lifelines(sample_store: Store):
    """A second, independent implementation of the same estimator."""
    frame = durations(sample_store, "retention").frame
    km = survival.kaplan_meier(frame.days, frame.event)
    fit = KaplanMeierFitter().fit(frame.days, frame.event)
    theirs = fit.survival_function_.iloc[:, 0]
    np.testing.assert_allclose(km.table.surv, theirs.loc[km.table.time].to_numpy(), rtol=1e-12)


def test_cumulative_incidence_matches_r(sample_store: Store, tmp_path: Path):
    frame = durations(sample_store, "retention").frame[["days", "event_type"]]
    r = run_r("""
st <- factor(ifelse(d$event_type == "censored", "censor", d$event_type),
             levels = c("censor", "dropped_out", "completed", "other_exit"))
s <- summary(survfit(Surv(days, st) ~ 1, data = d), times = c(30, 90, 180, 365, 540))
out("ci", data.frame(time = s$time, dropped_out = s$pstate[, 2], completed = s$pstate[, 3],
    other_exit = s$pstate[, 4], se_dropped_out = s$std.err[, 2], se_completed = s$std.err[, 3]))
""", frame, tmp_path)
    table = competing.cumulative_incidence(frame.days, frame.event_type)
    for row in r["ci"].itertuples():
        for kind in ("dropped_out", "completed", "other_exit"):
            sub = table[(table.exit_type == kind) & (table.time <= row.time)]
            assert np.isclose(sub.incidence.iloc[-1], getattr(row, kind), rtol=REL)
        for kind in ("dropped_out", "completed"):
            sub = table[(table.exit_type == kind) & (table.time <= row.time)]
            assert np.isclose(sub.se.iloc[-1], getattr(row, f"se_{kind}"), rtol=1e-6)


def test_median_at_exactly_half_takes_the_midpoint():
    # 4 subjects, events at 1 and 2 -> S = 0.5 on [2, 5): R and SAS report (2 + 5) / 2
    km = survival.kaplan_meier(np.array([1, 2, 5, 8]), np.array([True, True, True, False]))
    assert km.quantile(0.5)[0] == 3.5


def test_edge_cases():
    # a group with no events: survival 1, median not reached, CI (1, 1)
    km = survival.kaplan_meier(np.array([5, 10, 20]), np.array([False, False, False]))
    g = survival.summarize_group("none", km)
    assert g.median is None and g.median_ci == (None, None) and g.survival[30] is None
    assert km.at(10) == 1.0
    # a single participant with an event on day 0
    km = survival.kaplan_meier(np.array([0]), np.array([True]))
    assert km.at(0) == 0.0 and km.quantile(0.5)[0] == 0.0 and km.at(365) == 0.0
    # events on day 0 count at day 0
    km = survival.kaplan_meier(np.array([0, 0, 3, 7]), np.array([True, False, True, False]))
    assert km.table.time.tolist() == [0, 3, 7] and km.at(0) == 0.75
    # an empty group
    empty = survival.kaplan_meier(np.array([]), np.array([], bool))
    assert empty.n == 0 and empty.at(30) is None
    # log-rank: one group is no test; a group with no events still tests
    assert survival.logrank(np.array([1, 2]), np.array([True, False]), np.array(["a", "a"])) is None
    test = survival.logrank(np.array([1, 2, 3, 4]), np.array([True, True, False, False]), np.array(["a", "a", "b", "b"]))
    assert test.df == 1 and test.chi2 > 0


def test_risk_table_adds_up_to_n():
    days = np.array([0, 0, 10, 40, 95, 200, 400])
    event = np.array([True, False, True, False, True, False, True])
    tab = survival.risk_table(days, event, [0, 30, 90, 180, 365])
    assert (tab.at_risk + tab.events + tab.censored == 7).all()
    assert tab.iloc[0].tolist() == [0, 7, 0, 0]
    assert tab.set_index("time").loc[90].tolist() == [3, 2, 2]


def test_holm_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.5, 0.0001, 0.04, 0.9])
    np.testing.assert_allclose(survival.holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    assert survival.holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_pairwise_is_the_two_group_log_rank_with_holm():
    rng = np.random.default_rng(3)
    group = rng.choice(["b", "a", "c", "d"], 600)
    days = rng.exponential(np.select([group == "a", group == "b"], [50.0, 80.0], 120.0)).round()
    event, strata = rng.random(600) < 0.7, rng.choice(["x", "y"], 600)
    pairs = survival.pairwise_logrank(days, event, group, strata)
    assert [(p.a, p.b) for p in pairs] == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    for p in pairs:
        rows = (group == p.a) | (group == p.b)
        alone = survival.logrank(days[rows], event[rows], group[rows], strata[rows])  # checked against R above
        assert (p.chi2, p.p) == pytest.approx((alone.chi2, alone.p), rel=1e-12)
    np.testing.assert_allclose([p.p_holm for p in pairs], survival.holm([p.p for p in pairs]))
    assert min(p.p for p in pairs) < 1e-3


PAIRWISE_SCRIPT = """
g <- sort(unique(d$group))
rows <- list()
for (i in 1:(length(g) - 1)) for (j in (i + 1):length(g)) {
  s <- d[d$group %in% c(g[i], g[j]), ]
  t <- survdiff(Surv(days, event) ~ group, data = s)
  rows[[length(rows) + 1]] <- data.frame(a = g[i], b = g[j], chisq = t$chisq,
                                         p = pchisq(t$chisq, length(t$n) - 1, lower.tail = FALSE))
}
r <- do.call(rbind, rows)
r$p_holm <- p.adjust(r$p, method = "holm")
out("pairwise", r)
"""


def test_pairwise_logrank_p_values_and_holm_match_r(sample_store: Store, tmp_path: Path):
    frame = datasets(sample_store)["sobriety by substance"][["days", "event", "group"]]
    r = run_r(PAIRWISE_SCRIPT, frame, tmp_path)["pairwise"]
    mine = survival.pairwise_logrank(frame.days.to_numpy(), frame.event.to_numpy(), frame.group.to_numpy())
    assert len(mine) == len(r) >= 3
    for p, row in zip(mine, r.itertuples()):
        assert (p.a, p.b) == (row.a, row.b)
        assert close(p.chi2, row.chisq) and close(p.p, row.p) and close(p.p_holm, row.p_holm), (p, row)
    assert any(p.p_holm > p.p for p in mine)  # the correction did something


def test_holm_is_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.5), "holm") -> 0.04 0.09 0.09 0.025 0.5
    assert np.allclose(survival.holm([0.01, 0.04, 0.03, 0.005, 0.5]), [0.04, 0.09, 0.09, 0.025, 0.5])
    assert np.allclose(survival.holm([0.3, 0.6]), [0.6, 0.6]) and survival.holm([0.9, 0.8]).max() == 1.0
