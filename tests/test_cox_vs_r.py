"""analytics.stats.cox against R: coxph(ties="efron") and survival 3.x cox.zph, plus a simulation.

R is required, not optional: CI installs it, and a missing Rscript fails these tests
rather than skipping them (a skipped comparison would look like a passing one).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.ingest import importer
from analytics.stats.cox import CoxResult, fit_cox
from analytics.outcomes.definitions import durations
from analytics.store.connection import Store
from conftest import TODAY

pytestmark = pytest.mark.r

REPO = Path(__file__).resolve().parent.parent
REL, P_ABS = 1e-6, 1e-12

R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
a <- commandArgs(TRUE)
d <- read.csv(a[1], colClasses = "character", na.strings = character(0), check.names = FALSE)
spec <- read.csv(a[2], colClasses = "character", na.strings = character(0))
d$days <- as.numeric(d$days)
d$event <- as.integer(d$event)
for (i in seq_len(nrow(spec))) {
  v <- spec$covariate[i]
  d[[v]] <- relevel(factor(d[[v]]), ref = spec$reference[i])
}
f <- as.formula(paste("Surv(days, event) ~", paste(sprintf("`%s`", spec$covariate), collapse = " + ")))
ctl <- if (length(a) > 4) coxph.control(eps = as.numeric(a[5]), toler.chol = 1e-15) else coxph.control()
fit <- coxph(f, data = d, ties = "efron", control = ctl)
s <- summary(fit)$coefficients
ci <- exp(confint(fit))
nl <- sapply(spec$covariate, function(v) nlevels(d[[v]]) - 1)
lv <- unlist(lapply(spec$covariate, function(v) levels(d[[v]])[-1]))
write.csv(data.frame(term = rep(spec$covariate, nl), level = lv, hr = unname(exp(coef(fit))),
                     lo = unname(ci[, 1]), hi = unname(ci[, 2]), p = unname(s[, "Pr(>|z|)"]),
                     n = fit$n, events = fit$nevent), a[3], row.names = FALSE)
z <- tryCatch(cox.zph(fit)$table, error = function(e) NULL)
if (is.null(z)) z <- matrix(NA, 1, 3, dimnames = list("ERROR", c("chisq", "df", "p")))
write.csv(data.frame(term = rownames(z), chi2 = z[, "chisq"], df = z[, "df"], p = z[, "p"]),
          a[4], row.names = FALSE)
"""


def run_r(tmp_path: Path, frame: pd.DataFrame, covariates: list[str],
          references: dict[str, str], eps: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the same model in R from CSV files; R's numbers come back through write.csv.

    eps: coxph's convergence tolerance (relative change in log-likelihood), R's default 1e-9
    unless given."""
    rscript = shutil.which("Rscript")
    assert rscript, "Rscript not found: these tests compare with R (apt install r-base r-cran-survival)"
    folder = Path(tmp_path) / f"r{len(list(Path(tmp_path).glob('r*')))}"
    folder.mkdir()
    script, data, spec, cox, zph = (folder / n for n in ("fit.R", "d.csv", "spec.csv", "cox.csv", "zph.csv"))
    script.write_text(R_SCRIPT)
    frame[["days", "event", *covariates]].assign(event=frame.event.astype(int)).to_csv(data, index=False)
    pd.DataFrame({"covariate": covariates, "reference": [references[c] for c in covariates]}).to_csv(
        spec, index=False)
    args = [rscript, str(script), str(data), str(spec), str(cox), str(zph)] + ([str(eps)] if eps else [])
    done = subprocess.run(args,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    strings = {"term": str, "level": str}
    return (pd.read_csv(cox, dtype=strings, keep_default_na=False),
            pd.read_csv(zph, dtype=strings, keep_default_na=False, na_values=["NA"]))


def rel_diff(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


def assert_matches_r(result: CoxResult, r_cox: pd.DataFrame, r_zph: pd.DataFrame | None) -> dict[str, float]:
    """HR, CI and p to 1e-6 relative (p also to 1e-12 absolute); cox.zph chi2, df, p likewise."""
    ours = pd.DataFrame([{"term": t.term, "level": t.level, "hr": t.estimate, "lo": t.ci[0], "hi": t.ci[1],
                          "p": t.p} for t in result.terms])
    both = ours.merge(r_cox, on=["term", "level"], suffixes=("", "_r"), validate="1:1")
    assert len(both) == len(ours) == len(r_cox), (ours, r_cox)
    assert (result.n, result.events) == (r_cox.n[0], r_cox.events[0])
    diffs = {}
    for col in ("hr", "lo", "hi"):
        np.testing.assert_allclose(both[col], both[col + "_r"], rtol=REL, atol=0, err_msg=col)
        diffs[col] = rel_diff(both[col], both[col + "_r"])
    np.testing.assert_allclose(both.p, both.p_r, rtol=REL, atol=P_ABS, err_msg="p")
    diffs["p"] = rel_diff(both.p, both.p_r)
    if r_zph is not None:
        zph = pd.DataFrame([vars(t) for t in result.ph_test])
        assert zph.term.tolist() == r_zph.term.tolist()
        assert zph.df.tolist() == r_zph.df.astype(int).tolist()
        np.testing.assert_allclose(zph.chi2, r_zph.chi2, rtol=REL, atol=0, err_msg="zph chi2")
        np.testing.assert_allclose(zph.p, r_zph.p, rtol=REL, atol=P_ABS, err_msg="zph p")
        diffs["zph_chi2"], diffs["zph_p"] = rel_diff(zph.chi2, r_zph.chi2), rel_diff(zph.p, r_zph.p)
    return diffs


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory) -> Store:
    """The committed 800-participant sample, imported into a fresh store."""
    store = Store.open(tmp_path_factory.mktemp("cox") / "sample.duckdb")
    assert importer.import_files(store, [REPO / "data" / "sample"], today=TODAY).ok
    yield store
    store.close()


BASE = ["program", "age_band", "primary_substance"]


@pytest.mark.parametrize("covariates", [BASE, BASE + ["cohort_year"]], ids=["base", "cohort_year"])
@pytest.mark.parametrize("outcome", ["retention", "sobriety"])
def test_sample_store_matches_r(sample_store, tmp_path, outcome, covariates):
    frame = durations(sample_store, outcome).frame
    assert (frame.days == 0).any()  # day-0 rows are part of what is compared
    result = fit_cox(frame, covariates)
    assert result.covariates == covariates and result.n == len(frame)
    assert_matches_r(result, *run_r(tmp_path, frame, covariates, result.references))


def simulate(seed: int, n: int = 400, scale: float = 150.0, ph: bool = True) -> pd.DataFrame:
    """Exponential times with group HR 0.6 and arm HR 1/1.5/2, independent uniform censoring,
    floored to whole days (ties, and day-0 events). With ph=False the group's HR is 0.3 for
    the first 60 days and 2 after: a proportional-hazards violation for cox.zph to find."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["control", "treated"], n)
    arm = rng.choice(["A", "B", "C"], n)
    lp = np.select([arm == "B", arm == "C"], [np.log(1.5), np.log(2.0)], 0.0)
    rate = np.exp(lp) / scale
    e = rng.exponential(1.0, n)  # unit exponential = cumulative hazard at the event time
    if ph:
        t = e / (rate * np.where(group == "treated", 0.6, 1.0))
    else:
        early, late = np.where(group == "treated", 0.3, 1.0), np.where(group == "treated", 2.0, 1.0)
        h60 = 60 * rate * early
        t = np.where(e <= h60, e / (rate * early), 60 + (e - h60) / (rate * late))
    c = rng.uniform(0, 3 * scale, n)
    return pd.DataFrame({"days": np.floor(np.minimum(t, c)).astype(int), "event": t <= c,
                         "group": group, "arm": arm})


def test_simulated_ties_and_day_zero_match_r(tmp_path):
    frame = simulate(1, n=600, scale=40.0)
    frame.loc[frame.index[:30], "arm"] = "(not recorded)"  # a level name R and CSV must keep intact
    frame.loc[frame.index[30:60], "arm"] = "x, \"y\" 65+"
    assert ((frame.days == 0) & frame.event).sum() >= 5 and frame.days.duplicated().mean() > 0.5
    refs = {"group": "control", "arm": "A"}
    result = fit_cox(frame, ["group", "arm"], references=refs)
    assert result.references == refs and all(t.reference == refs[t.term] for t in result.terms)
    assert_matches_r(result, *run_r(tmp_path, frame, ["group", "arm"], refs))


def test_ph_violation_matches_r_and_is_flagged(tmp_path):
    frame = simulate(2, n=800, ph=False)
    result = fit_cox(frame, ["group", "arm"])
    assert_matches_r(result, *run_r(tmp_path, frame, ["group", "arm"], result.references))
    group = next(t for t in result.ph_test if t.term == "group")
    assert group.p < 1e-6
    assert any("proportional-hazards assumption looks violated for group" in w for w in result.warnings)
    assert not fit_cox(simulate(3), ["group", "arm"]).warnings  # PH holds there: no warning


def test_confidence_intervals_cover_the_true_hazard_ratios():
    truth = {("group", "treated"): np.log(0.6), ("arm", "B"): np.log(1.5), ("arm", "C"): np.log(2.0)}
    covered = dict.fromkeys(truth, 0)
    estimates: dict = {k: [] for k in truth}
    seeds = range(100, 140)
    for seed in seeds:
        result = fit_cox(simulate(seed), ["group", "arm"], references={"group": "control", "arm": "A"})
        for t in result.terms:
            key = (t.term, t.level)
            covered[key] += np.log(t.ci[0]) <= truth[key] <= np.log(t.ci[1])
            estimates[key].append(np.log(t.estimate))
    for key in truth:  # 95% intervals: expect ~38 of 40; 34 leaves room for chance
        assert covered[key] >= 34, (key, covered[key])
        assert abs(np.mean(estimates[key]) - truth[key]) < 0.1, key  # SE of the mean ~0.025


def test_default_reference_is_most_frequent_then_alphabetical():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"days": rng.integers(0, 50, 25), "event": rng.random(25) < 0.7,
                          "site": rng.permutation(["b"] * 10 + ["a"] * 10 + ["c"] * 5)})
    result = fit_cox(frame, ["site"])
    assert result.references == {"site": "a"}
    assert [(t.level, t.reference) for t in result.terms] == [("b", "a"), ("c", "a")]
    doc = result.to_json()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert set(doc) == {"cox", "ph_test"}
    assert set(doc["cox"][0]) == {"term", "level", "reference", "hr", "ci", "p"}
    assert set(doc["ph_test"][0]) == {"term", "chi2", "df", "p"} and doc["ph_test"][-1]["term"] == "GLOBAL"


def test_not_recorded_is_not_the_default_reference_unless_alone():
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"days": rng.integers(1, 50, 40), "event": rng.random(40) < 0.7,
                          "gender": ["(not recorded)"] * 20 + ["woman"] * 12 + ["man"] * 8})
    assert fit_cox(frame, ["gender"]).references == {"gender": "woman"}


# ------------------------------------------------------------------ edge cases ---

def test_level_without_events_is_left_out_with_a_warning(sample_store):
    frame = durations(sample_store, "retention").frame
    frame.loc[frame.index[:7], ["program", "event"]] = ["Pilot", False]
    result = fit_cox(frame, BASE)
    assert any("Pilot" in w and "left out" in w for w in result.warnings)
    assert result.n == len(frame) - 7 and all(t.level != "Pilot" for t in result.terms)
    same = fit_cox(frame[frame.program != "Pilot"], BASE)
    assert [t.estimate for t in result.terms] == pytest.approx([t.estimate for t in same.terms], rel=1e-9)
    with pytest.raises(ValueError, match="reference level 'Pilot' of program"):
        fit_cox(frame, BASE, references={"program": "Pilot"})


def test_level_with_infinite_hazard_ratio_is_left_out(sample_store):
    frame = durations(sample_store, "retention").frame
    frame["days"] += 1
    first = frame.index[frame.event][:3]  # three events before anyone else's: HR -> infinity
    frame.loc[first, ["days", "program"]] = [0, "Pilot"]
    result = fit_cox(frame, BASE)
    assert any("Pilot" in w and "left out" in w for w in result.warnings)
    assert result.n == len(frame) - 3


def test_single_participant_level_matches_r_where_zph_is_singular(sample_store, tmp_path):
    """One participant dropping out on day 0 (tied with others): R's HR is large but finite.
    lifelines overflows from its default first step; the retry recovers R's estimate. R's
    cox.zph stops ("computationally singular"); ours reports NaN with a warning.

    The likelihood is flat along that level, so R's default eps (1e-9) stops 2e-7 short of
    the maximum, which moves its p (z = 4.7) by 3e-6: R is compared at eps = 1e-12."""
    frame = durations(sample_store, "retention").frame
    frame.loc[frame.index[frame.event & (frame.days == 0)][0], "program"] = "Solo"
    result = fit_cox(frame, ["program", "age_band"])
    r_cox, r_zph = run_r(tmp_path, frame, ["program", "age_band"], result.references, eps=1e-12)
    assert_matches_r(result, r_cox, None)
    assert r_zph.term.tolist() == ["ERROR"]
    zph = {t.term: t for t in result.ph_test}
    assert np.isnan(zph["program"].chi2) and np.isnan(zph["GLOBAL"].chi2) and zph["age_band"].chi2 > 0
    assert any("could not be computed for program" in w for w in result.warnings)
    assert json.dumps(result.to_json(), allow_nan=False)


def test_overlapping_covariates_are_refused(sample_store):
    frame = durations(sample_store, "retention").frame  # the Online site runs one program only
    with pytest.raises(ValueError, match="covariates overlap: .*site"):
        fit_cox(frame, ["program", "site"])


@pytest.mark.parametrize("make, message", [
    (lambda f: f.assign(event=False), "no events among the 800 participants"),
    (lambda f: f.iloc[:0], "data is empty"),
    (lambda f: f.iloc[:1].assign(event=True), "at least two participants"),
    (lambda f: f.iloc[:1].assign(event=False), "no events"),
    (lambda f: f.assign(program="One"), "nothing to compare"),
    (lambda f: f.assign(days=-1), "days"),
], ids=["all_censored", "empty", "single_participant", "single_censored", "one_level", "negative_days"])
def test_unusable_data_gives_a_clear_value_error(sample_store, make, message):
    frame = make(durations(sample_store, "retention").frame)
    with pytest.raises(ValueError, match=message):
        fit_cox(frame, ["program"])


def test_events_all_on_one_day():
    frame = pd.DataFrame({"days": [3, 3, 5, 5], "event": [True, True, False, False],
                          "program": ["a", "b", "a", "b"]})
    result = fit_cox(frame, ["program"])
    assert result.terms[0].estimate == pytest.approx(1.0)
    assert all(np.isnan(t.chi2) for t in result.ph_test) and result.warnings


def test_second_cross_check_with_lifelines():
    """lifelines' CoxPHFitter (Efron ties) on the same dummies: a check independent of R."""
    from lifelines import CoxPHFitter

    frame = simulate(7, n=500, scale=60.0)
    result = fit_cox(frame, ["group", "arm"], references={"group": "control", "arm": "A"})
    X = pd.DataFrame({"treated": frame.group == "treated", "B": frame.arm == "B", "C": frame.arm == "C"},
                     dtype=float).assign(T=frame.days, E=frame.event)
    theirs = CoxPHFitter().fit(X, "T", "E", fit_options={"precision": 1e-14, "r_precision": 1e-15,
                                                         "max_steps": 200}).summary
    np.testing.assert_allclose([t.estimate for t in result.terms], theirs["exp(coef)"], rtol=1e-6)
    np.testing.assert_allclose([t.p for t in result.terms], theirs["p"], rtol=1e-5)
