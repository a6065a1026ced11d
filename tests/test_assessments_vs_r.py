"""R agrees with the recovery-capital statistics on the bundled sample (issue 14).

Tolerances: paired t, Wilcoxon and McNemar are closed-form, so 1e-9 relative; the mixed
model is an optimisation on both sides (ML, REML = FALSE in lme4): the log-likelihood to 1e-7
relative (ours never lower), fixed effects, the slope's standard error, the intercept SD and
the residual SD to 1e-4, the slope SD and the correlation (a flat direction of the likelihood) to 2e-3.
lme4 refuses by default when observations <= random effects (most people have one or two
assessments); the check is switched off, the model is still identified by the people with
three or more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.analyses import assessments as A
from analytics.ingest.bootstrap import ensure_store
from analytics.stats import paired
from analytics.stats.growth import fit_growth
from analytics.store.connection import Store
from tests.rsupport import run_r

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> A.AssessmentResult:
    path = ensure_store(tmp_path_factory.mktemp("sample") / "sample.duckdb")
    with Store.open(path, read_only=True) as store:
        return A.analyse_assessments(store)


def test_paired_tests_match_r(result: A.AssessmentResult, tmp_path: Path):
    pairs = result.pairs[["program", "baseline_total", "followup_total"]]
    r = run_r("""
        res <- do.call(rbind, lapply(c("all", sort(unique(d$program))), function(g) {
          x <- if (g == "all") d else d[d$program == g, ]
          t <- t.test(x$followup_total, x$baseline_total, paired = TRUE)
          w <- suppressWarnings(wilcox.test(x$followup_total, x$baseline_total, paired = TRUE))
          m <- mcnemar.test(factor(x$baseline_total >= 47, c(FALSE, TRUE)), factor(x$followup_total >= 47, c(FALSE, TRUE)))
          data.frame(group = g, n = nrow(x), mean = unname(t$estimate), lo = t$conf.int[1], hi = t$conf.int[2],
                     p_t = t$p.value, p_w = w$p.value, p_m = m$p.value)
        }))
        out("paired", res)""", pairs, tmp_path)["paired"].set_index("group")
    ours = {"all": result.change.to_json(), **{g["group"]: g["change"] for g in result.by_group}}
    for group, row in r.iterrows():
        c = ours[group]
        assert c["n"] == row.n
        np.testing.assert_allclose([c["mean"], *c["ci"], c["p_t"], c["p_wilcoxon"], c["at_or_above_47"]["p_mcnemar"]],
                                   [row["mean"], row.lo, row.hi, row.p_t, row.p_w, row.p_m], rtol=1e-9)


def test_wilcoxon_exact_branch_and_welch_match_r(tmp_path: Path):
    rng = np.random.default_rng(2)
    before = rng.normal(30, 5, 20)
    after = before + rng.normal(1, 2, 20)  # no ties, no zeros, n < 50: R's exact test
    x, y = rng.normal(29, 6, 40), rng.normal(32, 5, 70)
    frame = pd.DataFrame({"before": before, "after": after})
    r = run_r(f"""
        w <- wilcox.test(d$after, d$before, paired = TRUE)
        t <- t.test(c({','.join(repr(float(v)) for v in x)}), c({','.join(repr(float(v)) for v in y)}))
        out("r", data.frame(p_w = w$p.value, p_t = t$p.value, lo = t$conf.int[1], hi = t$conf.int[2]))""",
              frame, tmp_path)["r"].iloc[0]
    assert paired.wilcoxon_signed_rank(after, before) == pytest.approx(r.p_w, rel=1e-9)
    welch = paired.welch_t(x, y)
    np.testing.assert_allclose([welch.p, *welch.ci], [r.p_t, r.lo, r.hi], rtol=1e-9)


def test_mixed_model_matches_lme4_ml(result: A.AssessmentResult, tmp_path: Path):
    traj = result.trajectories[["participant_id", "months", "total"]]
    r = run_r("""
        suppressMessages(library(lme4))
        f <- lmer(total ~ months + (months | participant_id), d, REML = FALSE,
                  control = lmerControl(check.nobs.vs.nRE = "ignore"))
        vc <- as.data.frame(VarCorr(f))
        out("lmer", data.frame(b0 = fixef(f)[1], b1 = fixef(f)[2], se0 = sqrt(vcov(f)[1, 1]),
                               se1 = sqrt(vcov(f)[2, 2]), sd0 = vc$sdcor[1], sd1 = vc$sdcor[2], corr = vc$sdcor[3],
                               sigma = sigma(f), ll = as.numeric(logLik(f))))""", traj, tmp_path)["lmer"].iloc[0]
    g = fit_growth(traj)
    assert g.slope == result.growth.slope
    assert g.loglik == pytest.approx(r["ll"], rel=1e-7) and g.loglik >= r["ll"] - 1e-6  # as high as lme4's
    np.testing.assert_allclose([g.intercept, g.slope, g.slope_se], [r["b0"], r["b1"], r["se1"]], rtol=1e-4)
    # The likelihood (equal to 1e-7 above, ours never lower) is flat along the variance
    # components, so the two optimisers stop a little apart there: SDs within 0.1%, the
    # slope's SD and the correlation (flattest) within 0.2%.
    np.testing.assert_allclose([g.sd_intercept, g.sd_residual], [r["sd0"], r["sigma"]], rtol=1e-3)
    np.testing.assert_allclose([g.sd_slope, g.corr], [r["sd1"], r["corr"]], rtol=2e-3)
