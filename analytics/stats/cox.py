"""Cox proportional-hazards models on per-participant durations, checked against R.

fit_cox turns categorical covariates into treatment dummies against a stated reference
level, fits the model with lifelines (Efron ties, as R's coxph does by default) and
tests proportional hazards the way R's survival 3.x cox.zph does. lifelines'
proportional_hazard_test is not used: it differs from cox.zph (a score test since
survival 3.0) and has no global test, and the numbers we show must be the ones a
statistician gets from R.

The PH test (cox.zph, transform="km", terms=TRUE): at the fitted beta, the score test
for adding the time-varying terms g(t)*x, where g(t) = 1 - KM(t-) of the whole sample,
centred on its mean over the event times. For a covariate with k levels the k-1 g*x
terms are tested together (k-1 df); GLOBAL tests all of them. The variance comes from
the information matrix of (x, g*x) at beta with the Efron tie correction.

Caveats: hazard ratios are adjusted for the other covariates listed, not causal; a
level with no events has no finite hazard ratio, so its participants are left out (with
a warning); covariates that determine each other are refused with a ValueError.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError
from scipy import stats

from analytics.outcomes.definitions import MISSING_LEVEL

__all__ = ["CoxTerm", "PHTest", "CoxResult", "fit_cox", "zph_test"]

# Newton-Raphson must converge well past lifelines' defaults (1e-7) to agree with R to 1e-6.
_FIT_OPTIONS = {"precision": 1e-14, "r_precision": 1e-15, "max_steps": 200}
_MAX_ABS_COEF = 10.0  # |log HR| beyond this (HR > 22,000 or < 1/22,000) means divergence
_MAX_SE = 10.0
_T, _E = "\0duration", "\0event"  # working column names that cannot clash with a covariate


@dataclass
class CoxTerm:
    """One hazard ratio: `level` of covariate `term` against its `reference` level."""

    term: str
    level: str
    reference: str
    hr: float
    ci: tuple[float, float]
    p: float


@dataclass
class PHTest:
    """cox.zph row for one covariate (all its dummies together) or "GLOBAL"."""

    term: str
    chi2: float
    df: int
    p: float


@dataclass
class CoxResult:
    """A fitted model: hazard ratios, PH tests, and what was done to the data and why."""

    terms: list[CoxTerm]
    ph_test: list[PHTest]
    n: int
    events: int
    covariates: list[str]
    references: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The "cox" and "ph_test" lists, plain JSON types only."""
        cox = [{**asdict(t), "ci": [t.ci[0], t.ci[1]]} for t in self.terms]
        ph = [{**asdict(t), "chi2": _num(t.chi2), "p": _num(t.p)} for t in self.ph_test]
        return {"cox": cox, "ph_test": ph}


def _num(x: float) -> float | None:
    """NaN (a test that could not be computed) becomes null: JSON has no NaN."""
    return None if np.isnan(x) else float(x)


def _efron(time: np.ndarray, event: np.ndarray, X: np.ndarray, beta: np.ndarray,
           h: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Efron score and information at beta, each event time weighted by h (default 1).

    With h = g(t) or g(t)^2 this gives the cross blocks that cox.zph needs: the g*x terms
    share the risk sets of x, so their blocks are the usual ones weighted by g per time.
    Vectorised: risk-set sums are reverse cumulative sums; sum_k (S2 - f E2)/den_k becomes
    one weighted X'X, so memory stays O(n p).
    """
    order = np.argsort(time, kind="stable")
    t, d, X = time[order], event[order], X[order]
    X = X - X.mean(axis=0)
    eta = X @ beta
    r = np.exp(eta - eta.max())  # every quantity is a ratio of risks: the scale cancels
    ev_t, dj = np.unique(t[d], return_counts=True)
    m = len(ev_t)
    h = np.ones(m) if h is None else h
    first = np.searchsorted(t, ev_t, side="left")  # risk set at ev_t: rows first.. end
    S0 = np.cumsum(r[::-1])[::-1][first]
    S1 = np.cumsum((r[:, None] * X)[::-1], axis=0)[::-1][first]
    Xd, rd = X[d], r[d]
    j = np.repeat(np.arange(m), dj)  # event-time index of each event (t is sorted)
    E0 = np.bincount(j, rd, minlength=m)
    E1 = np.stack([np.bincount(j, rd * Xd[:, c], minlength=m) for c in range(X.shape[1])], axis=1)
    f = (np.arange(len(j)) - np.repeat(np.cumsum(dj) - dj, dj)) / dj[j]  # k/d_j, k = 0..d_j-1
    den = S0[j] - f * E0[j]
    xbar = (S1[j] - f[:, None] * E1[j]) / den[:, None]
    hj = h[j]
    score = ((Xd - xbar) * hj[:, None]).sum(axis=0)
    a = np.bincount(j, hj / den, minlength=m)       # sum_k h/den_k per event time
    b = hj * f / den                                 # per event row: h f/den_k
    cum_a = np.concatenate([[0.0], np.cumsum(a)])[np.searchsorted(ev_t, t, side="right")]
    bj = np.bincount(j, b, minlength=m)              # sum_k h f_k/den_k per event time
    info = ((X * (r * cum_a)[:, None]).T @ X          # sum_j h a_j S2(risk set j)
            - (Xd * (rd * bj[j])[:, None]).T @ Xd      # - sum_j h b_j S2(deaths at j)
            - (xbar * hj[:, None]).T @ xbar)           # - sum_jk h xbar xbar'
    return score, info


def _km_transform(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """cox.zph's "km" g(t): 1 - KM just before t, centred on its mean over the events."""
    u, inverse = np.unique(time, return_inverse=True)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inverse))[:-1]])
    died = np.bincount(inverse, event.astype(float), minlength=len(u))
    surv = np.cumprod(1.0 - died / at_risk)
    g = 1.0 - np.concatenate([[1.0], surv])[inverse]  # value at the previous distinct time
    return g - g[event].mean()


def zph_test(time: np.ndarray, event: np.ndarray, X: np.ndarray, beta: np.ndarray,
             groups: Mapping[str, Sequence[int]]) -> list[PHTest]:
    """R's cox.zph table (transform "km", terms=TRUE): one row per group of columns, then GLOBAL."""
    time, event, X = np.asarray(time, float), np.asarray(event, bool), np.asarray(X, float)
    p = X.shape[1]
    g = _km_transform(time, event)
    g_ev = np.unique(np.column_stack([time[event], g[event]]), axis=0)[:, 1]  # one g per event time
    _, i11 = _efron(time, event, X, beta)
    u2, i12 = _efron(time, event, X, beta, g_ev)
    _, i22 = _efron(time, event, X, beta, g_ev ** 2)
    imat = np.block([[i11, i12], [i12, i22]])
    u = np.concatenate([np.zeros(p), u2])  # the x part of the score is 0 at the MLE

    def chi2(cols: np.ndarray) -> float:
        kk = np.concatenate([np.arange(p), p + cols])
        sub = imat[np.ix_(kk, kk)]
        if 1 / np.linalg.cond(sub, 1) < np.finfo(float).eps:  # R's solve() tolerance: there
            return float("nan")  # cox.zph stops, "computationally singular" (all events on one day)
        return float(u[kk] @ np.linalg.solve(sub, u[kk]))

    rows = [(name, chi2(np.asarray(cols)), len(cols)) for name, cols in groups.items()]
    rows.append(("GLOBAL", chi2(np.arange(p)), p))
    return [PHTest(name, c, df, float(stats.chi2.sf(c, df))) for name, c, df in rows]


def _aliased(X: np.ndarray, names: list[str]) -> str | None:
    """Name a dummy that the intercept and earlier dummies determine exactly (collinearity)."""
    kept = [np.ones(len(X))]
    kept_names: list[str] = []
    for col, name in zip(X.T, names):
        A = np.column_stack(kept)
        coef, *_ = np.linalg.lstsq(A, col, rcond=None)
        if np.linalg.norm(col - A @ coef) <= 1e-8 * max(np.linalg.norm(col), 1.0):
            involved = [n for n, c in zip(kept_names, coef[1:]) if abs(c) > 1e-8]
            return f"{name} is determined by {', '.join(involved) or 'the others'}"
        kept.append(col)
        kept_names.append(name)
    return None


def _reference(levels: pd.Series) -> str:
    """Most frequent recorded level, ties broken alphabetically: a stable, well-populated
    baseline. "(not recorded)" is a poor baseline, so it is the reference only when alone."""
    counts = levels.value_counts()
    recorded = counts.drop(MISSING_LEVEL, errors="ignore")
    counts = recorded if len(recorded) else counts
    return sorted(counts.index[counts == counts.max()])[0]


def fit_cox(frame: pd.DataFrame, covariates: Sequence[str], *, duration: str = "days",
            event: str = "event", references: Mapping[str, str] | None = None,
            alpha: float = 0.05) -> CoxResult:
    """Hazard ratios of each covariate level against its reference, with cox.zph PH tests.

    Every covariate is treated as categorical (values as strings). The reference level is
    the most frequent one unless `references` names another. Levels without events are
    left out with a warning; levels whose hazard ratio still diverges are left out too.
    Raises ValueError (never a lifelines traceback) for an empty frame, no events, nothing
    left to compare, or covariates that determine each other. `alpha` sets the CI level
    (1 - alpha) and the p-value below which the PH assumption is flagged.
    """
    covariates = list(dict.fromkeys(covariates))
    references = dict(references or {})
    if not covariates:
        raise ValueError("name at least one covariate to model")
    missing = [c for c in (duration, event, *covariates) if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the data: {', '.join(missing)}")
    unknown = set(references) - set(covariates)
    if unknown:
        raise ValueError(f"references given for covariates not in the model: {', '.join(sorted(unknown))}")
    if len(frame) == 0:
        raise ValueError("no participants to model: the data is empty")
    if frame[event].isna().any():
        raise ValueError(f"'{event}' is missing for some participants: it must be true or false")
    data = pd.DataFrame({_T: pd.to_numeric(frame[duration], errors="coerce").to_numpy(float),
                         _E: frame[event].astype(bool).to_numpy()})
    if not np.isfinite(data[_T]).all() or (data[_T] < 0).any():
        raise ValueError(f"'{duration}' must be a number of days >= 0 for every participant")
    for c in covariates:
        data[c] = frame[c].astype(object).where(frame[c].notna(), MISSING_LEVEL).astype(str).to_numpy()
    if not data[_E].any():
        raise ValueError(f"no events among the {len(data)} participants (all are censored): "
                         "a Cox model needs at least one event")
    drop: dict[str, set[str]] = {c: set(data.groupby(c)[_E].sum().loc[lambda e: e == 0].index)
                                 for c in covariates}
    full = data
    while True:  # leave out non-estimable levels, refit until every hazard ratio is finite
        data, notes = full, []
        for c in covariates:
            bad = sorted(drop[c] & set(data[c]))
            if bad and references.get(c) in bad:
                raise ValueError(f"the reference level {references[c]!r} of {c} cannot be used: its "
                                 "hazard is not estimable (no events or too few participants)")
            if bad:
                notes.append(f"{c}: {', '.join(bad)} left out of the model (no events or too few "
                             "participants to estimate a hazard ratio).")
                data = data[~data[c].isin(bad)]
        X, names, groups, refs, used, labels = _design(data, covariates, references, notes)
        alias = _aliased(X, names)
        if alias:
            raise ValueError(f"covariates overlap: {alias}; leave one of these covariates out "
                             "(e.g. site with program when each site runs one program)")
        beta, se = _fit(data, X)
        diverged = ~np.isfinite(beta) | (np.abs(beta) > _MAX_ABS_COEF) | ~(se < _MAX_SE)
        if not diverged.any():
            break
        for k in np.flatnonzero(diverged):
            drop[labels[k][0]].add(labels[k][1])

    z = stats.norm.ppf(1 - alpha / 2)
    pvals = stats.chi2.sf((beta / se) ** 2, 1)
    terms = [CoxTerm(c, lvl, refs[c], float(np.exp(b)), (float(np.exp(b - z * s)), float(np.exp(b + z * s))),
                     float(pv)) for (c, lvl), b, s, pv in zip(labels, beta, se, pvals)]
    ph = zph_test(data[_T].to_numpy(), data[_E].to_numpy(), X, beta, groups)
    untestable = [t.term for t in ph if np.isnan(t.chi2) and t.term != "GLOBAL"]
    if any(np.isnan(t.chi2) for t in ph):
        notes.append("The proportional-hazards test could not be computed for "
                     + (", ".join(untestable) or "the model as a whole")
                     + ": too few events spread over follow-up time (e.g. a level with one participant, "
                       "or all events on one day).")
    flagged = [t for t in ph if t.p < alpha]
    if flagged:
        notes.append("The proportional-hazards assumption looks violated for "
                     + ", ".join(f"{'the model as a whole' if t.term == 'GLOBAL' else t.term} (p = {t.p:.2g})"
                                 for t in flagged)
                     + ": the hazard ratio changes over follow-up, so a single number averages it; "
                       "consider stratifying or reporting separate time periods.")
    return CoxResult(terms, ph, len(data), int(data[_E].sum()), used, refs, notes)


def _design(data: pd.DataFrame, covariates: list[str], references: Mapping[str, str],
            notes: list[str]) -> tuple[np.ndarray, list[str], dict[str, list[int]], dict[str, str],
                                       list[str], list[tuple[str, str]]]:
    """Treatment dummies (non-reference levels, alphabetical) and which columns each covariate owns."""
    if len(data) < 2:
        raise ValueError(f"a Cox model needs at least two participants; {len(data)} left to model"
                         + (" after leaving out levels without events" if notes else ""))
    cols, names, labels, groups, refs, used = [], [], [], {}, {}, []
    for c in covariates:
        levels = sorted(set(data[c]))
        if len(levels) < 2:
            notes.append(f"{c}: a single level ({levels[0]}) among the participants modelled, "
                         "so it was left out of the model.")
            continue
        ref = references.get(c, _reference(data[c]))
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} of {c} is not in the data; "
                             f"levels: {', '.join(levels)}")
        refs[c] = ref
        used.append(c)
        groups[c] = []
        for lvl in levels:
            if lvl != ref:
                groups[c].append(len(cols))
                cols.append((data[c] == lvl).to_numpy(float))
                names.append(f"{c}={lvl}")
                labels.append((c, lvl))
    if not cols:
        raise ValueError("nothing to compare: every covariate has a single level among the "
                         f"{len(data)} participants modelled")
    return np.column_stack(cols), names, groups, refs, used, labels


def _fit(data: pd.DataFrame, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lifelines fit on anonymous columns (level names never reach its formula parser).

    lifelines takes a full first Newton step, which overflows when a rare level's estimate
    is large (e.g. one participant who relapsed on day 0). Small steps then find R's
    estimate but crawl and stop short (~1e-6), so the fit is restarted from there with
    full steps (lifelines' initial_point is on its standardised scale).
    """
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    df["T"], df["E"] = data[_T].to_numpy(), data[_E].to_numpy()
    scale = df.drop(columns=["T", "E"]).std().to_numpy()
    error = ""

    def attempt(step: float, start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        nonlocal error
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")  # divergence is judged from the estimates instead
                cph = CoxPHFitter().fit(df, "T", "E", initial_point=start,
                                        fit_options={**_FIT_OPTIONS, "step_size": step})
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            error = str(exc).splitlines()[0]
            return None
        beta, se = cph.params_.to_numpy(), cph.standard_errors_.to_numpy()
        return (beta, se) if np.isfinite(beta).all() and np.isfinite(se).all() else None

    for step in (0.95, 0.1, 0.01):
        found = attempt(step, None)
        if found and step < 0.95:
            found = attempt(0.95, found[0] * scale) or found
        if found:
            return found
    raise ValueError(f"the Cox model could not be fitted ({error or 'no finite estimates'}); "
                     "try fewer covariates or merge rare levels")
