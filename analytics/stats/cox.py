"""Cox proportional-hazards models on per-participant durations, checked against R.

fit_cox turns categorical covariates into treatment dummies against a stated reference
level, merges participants with the same (days, event, levels) into one row with a count,
fits the model with the Efron engine of analytics.stats.efron (Efron ties and Newton-Raphson
as R's coxph) and tests proportional hazards the way R's survival 3.x cox.zph does, on the
same engine. lifelines' proportional_hazard_test differs from cox.zph (a score test since
survival 3.0) and has no global test, and the numbers we show must be the ones a
statistician gets from R.

The PH test is analytics.stats.zph (R's cox.zph on the same engine).

Caveats: hazard ratios are adjusted for the other covariates listed, not causal; a
level with no events has no finite hazard ratio, so its participants are left out (with
a warning); covariates that determine each other are refused with a ValueError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from analytics.stats.efron import EfronProblem, newton_raphson
from analytics.stats.result import MISSING_LEVEL, Estimate, reference_level
from analytics.stats.zph import PHTest, zph_on_problem

__all__ = ["CoxResult", "fit_cox"]

_TOL, _MAX_ITER = 1e-12, 100  # tighter than coxph's default eps (1e-9): R's estimate to 1e-6 even where flat
_MAX_ABS_COEF = 10.0  # |log HR| beyond this (HR > 22,000 or < 1/22,000) means divergence
_MAX_SE = 10.0
_T, _E = "\0duration", "\0event"  # working column names that cannot clash with a covariate


@dataclass
class CoxResult:
    """A fitted model: hazard ratios, PH tests, and what was done to the data and why."""

    terms: list[Estimate]  # hazard ratios: level of term against reference
    ph_test: list[PHTest]
    n: int
    events: int
    covariates: list[str]
    references: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The "cox" and "ph_test" lists, plain JSON types only."""
        cox = [t.level_json() for t in self.terms]
        ph = [{**asdict(t), "chi2": _num(t.chi2), "p": _num(t.p)} for t in self.ph_test]
        return {"cox": cox, "ph_test": ph}


def _num(x: float) -> float | None:
    """NaN (a test that could not be computed) becomes null: JSON has no NaN."""
    return None if np.isnan(x) else float(x)


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


def fit_cox(frame: pd.DataFrame, covariates: Sequence[str], *, duration: str = "days",
            event: str = "event", references: Mapping[str, str] | None = None,
            alpha: float = 0.05) -> CoxResult:
    """Hazard ratios of each covariate level against its reference, with cox.zph PH tests.

    Every covariate is treated as categorical (values as strings). The reference level is
    the most frequent one unless `references` names another. Levels without events are
    left out with a warning; levels whose hazard ratio still diverges are left out too.
    Raises ValueError (never a linear-algebra traceback) for an empty frame, no events, nothing
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
        data[c] = pd.Categorical(frame[c].astype(object).where(frame[c].notna(), MISSING_LEVEL).astype(str).to_numpy())
    if not data[_E].any():
        raise ValueError(f"no events among the {len(data)} participants (all are censored): "
                         "a Cox model needs at least one event")
    drop: dict[str, set[str]] = {c: set(data.groupby(c, observed=True)[_E].sum().loc[lambda e: e == 0].index)
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
        rows, counts = _patterns(data, [_T, _E, *used])
        alias = _aliased(X[_patterns(data, used)[0]], names)  # the distinct rows span the same space
        if alias:
            raise ValueError(f"covariates overlap: {alias}; leave one of these covariates out "
                             "(e.g. site with program when each site runs one program)")
        time, died, X = data[_T].to_numpy()[rows], data[_E].to_numpy()[rows], X[rows]
        problem, beta, se = _fit(time, died, X, counts)
        diverged = ~np.isfinite(beta) | (np.abs(beta) > _MAX_ABS_COEF) | ~(se < _MAX_SE)
        if not diverged.any():
            break
        for k in np.flatnonzero(diverged):
            drop[labels[k][0]].add(labels[k][1])

    z = stats.norm.ppf(1 - alpha / 2)
    pvals = stats.chi2.sf((beta / se) ** 2, 1)
    terms = [Estimate(c, float(np.exp(b)), (float(np.exp(b - z * s)), float(np.exp(b + z * s))), float(pv),
                      level=lvl, reference=refs[c]) for (c, lvl), b, s, pv in zip(labels, beta, se, pvals)]
    with threadpool_limits(limits=1, user_api="blas"):
        ph = zph_on_problem(problem, time, died, counts, beta, groups)
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
        codes, uniques = pd.factorize(data[c])
        sizes = np.bincount(codes, minlength=len(uniques))
        levels = sorted(uniques)
        if len(levels) < 2:
            notes.append(f"{c}: a single level ({levels[0]}) among the participants modelled, "
                         "so it was left out of the model.")
            continue
        ref = references[c] if c in references else reference_level(dict(zip(uniques, sizes)))
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} of {c} is not in the data; "
                             f"levels: {', '.join(levels)}")
        refs[c] = ref
        used.append(c)
        groups[c] = []
        index = {lvl: k for k, lvl in enumerate(uniques)}
        for lvl in levels:
            if lvl != ref:
                groups[c].append(len(cols))
                cols.append((codes == index[lvl]).astype(float))
                names.append(f"{c}={lvl}")
                labels.append((c, lvl))
    if not cols:
        raise ValueError("nothing to compare: every covariate has a single level among the "
                         f"{len(data)} participants modelled")
    return np.column_stack(cols), names, groups, refs, used, labels


def _patterns(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One row per distinct combination of `columns` and how many participants it stands for.
    On (days, event, levels), the engine's replication counts give the fit of every row."""
    key = data.groupby(columns, sort=False, observed=True).ngroup().to_numpy()
    first = np.empty(key.max() + 1, np.int64)
    first[key[::-1]] = np.arange(len(key))[::-1]
    return first, np.bincount(key).astype(float)


def _fit(time: np.ndarray, event: np.ndarray, X: np.ndarray,
         counts: np.ndarray) -> tuple[EfronProblem, np.ndarray, np.ndarray]:
    """Efron fit (everyone at risk from day 0); a rare level's diverging estimate is judged by
    the caller from beta and se. ValueError when the information is singular at the start."""
    problem = EfronProblem(time, event, X, counts)
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # p x p products: threads only add overhead
            fit = newton_raphson(problem, tol=_TOL, max_iter=_MAX_ITER)
    except ValueError as exc:
        raise ValueError(f"the Cox model could not be fitted ({exc}); "
                         "try fewer covariates or merge rare levels") from None
    with np.errstate(invalid="ignore"):
        return problem, fit.beta, np.sqrt(np.diag(fit.var))
