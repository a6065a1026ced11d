"""Time-varying Cox model on counting-process data, equal to R's coxph(Surv(start, stop, event)).

One row per participant-period at risk: interval (start, stop], an event flag for the end
of the interval, covariates constant within the row. fit_counting_cox maximises the exact
Efron partial likelihood as R's survival::coxph(..., ties = "efron") does for such data
(rows are individuals; no cluster()), with Newton-Raphson from beta = 0, step halving when
the log-likelihood falls and R's stopping rule (relative change in the log-likelihood
<= tol). Standard errors come from the inverse information at the returned beta; CIs and
p-values are Wald (exp(coef -/+ z_0.975 se), two-sided normal p).

Risk set at an event time t: the rows with start < t <= stop. Tied deaths at t are
handled with Efron's correction over the d individual deaths at t.

weights are integer REPLICATION counts: a row with weight w stands for w identical rows.
A person-week table collapsed by (start, stop, event, covariate pattern) with counts
gives exactly the estimates of the expanded table, Efron correction included (d counts
individual deaths). This is NOT R's `weights=` (case weights, for which coxph's Efron
correction averages over rows); compare with R on the expanded table.

The likelihood, score, information and Newton-Raphson are analytics.stats.efron's, the
one engine behind every Cox fit here; this module validates the input and reports.

Caveats: a covariate with no events in one of its levels has an infinite MLE; the fit
then stops on the log-likelihood rule with a large |coef| and a huge se, as coxph does
(coxph also warns). Hazard ratios are associations adjusted for the other columns of X;
lag time-varying exposures (e.g. last week's meetings) to avoid immortal-time bias.
Times are compared exactly; coxph (timefix = TRUE) also merges times that differ only by
rounding error (about 1e-8 relative), so use whole-number times (days) to be sure of the
same tied sets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from analytics.stats.efron import EfronProblem, newton_raphson

__all__ = ["TVCoxResult", "fit_counting_cox"]

_Z975 = stats.norm.ppf(0.975)


@dataclass
class TVCoxResult:
    """A fitted counting-process Cox model.

    ci is (k, 2) on the hazard-ratio scale; n_rows and n_events count individual rows and
    deaths (a row of weight w counts w times), so a collapsed table reports what its
    expanded table would. iterations counts Newton-Raphson iterations as coxph's `iter`."""

    names: list[str]
    coef: np.ndarray
    se: np.ndarray
    hr: np.ndarray
    ci: np.ndarray
    p: np.ndarray
    loglik: float
    n_rows: int
    n_events: int
    iterations: int

    def table(self) -> pd.DataFrame:
        """One row per term: term, coef, se, hr, lo, hi, p."""
        return pd.DataFrame({"term": list(self.names), "coef": self.coef, "se": self.se,
                             "hr": self.hr, "lo": self.ci[:, 0], "hi": self.ci[:, 1], "p": self.p})


def _vector(values, name: str, n: int | None = None) -> np.ndarray:
    try:
        if isinstance(values, (pd.Series, pd.Index)):  # nullable dtypes: pd.NA -> NaN
            out = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            out = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if out.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {out.shape}")
    if n is not None and len(out) != n:
        raise ValueError(f"{name} has {len(out)} values, expected {n} (one per row)")
    if not np.isfinite(out).all():
        bad = np.flatnonzero(~np.isfinite(out))
        raise ValueError(f"{name} has {len(bad)} missing or infinite values (first at row {bad[0]})")
    return out


def _design(X, names: Sequence[str] | None, n: int) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.Series):
        X = X.to_frame()
    frame_names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    try:
        if isinstance(X, pd.DataFrame):
            mat = X.to_numpy(dtype=float, na_value=np.nan)
        else:
            mat = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be numeric: {exc}") from None
    if mat.ndim == 1:
        mat = mat[:, None]
    if mat.ndim != 2:
        raise ValueError(f"X must be two-dimensional, got shape {mat.shape}")
    if mat.shape[0] != n:
        raise ValueError(f"X has {mat.shape[0]} rows, expected {n} (one per row of start/stop)")
    if mat.shape[1] == 0:
        raise ValueError("X has no columns")
    if not np.isfinite(mat).all():
        rows, cols = np.nonzero(~np.isfinite(mat))
        raise ValueError(f"X has {len(rows)} missing or infinite values (first at row {rows[0]}, column {cols[0]})")
    labels = list(names) if names is not None else frame_names or [f"x{i}" for i in range(mat.shape[1])]
    if len(labels) != mat.shape[1]:
        raise ValueError(f"{len(labels)} names given for {mat.shape[1]} columns of X")
    return mat, [str(s) for s in labels]


def _check_rank(X: np.ndarray, c: np.ndarray, names: list[str]) -> np.ndarray:
    """Weighted column means; ValueError if a column is constant or columns are collinear
    among the rows that are at risk at some event time."""
    total = c.sum()
    mean = (c @ X) / total
    cross = np.zeros((X.shape[1], X.shape[1]))
    for lo in range(0, len(X), 1 << 20):  # centred cross-products in chunks
        xc = X[lo:lo + (1 << 20)] - mean
        cross += xc.T @ (xc * c[lo:lo + (1 << 20), None])
    scale = np.sqrt(np.clip(np.diag(cross), 0, None))
    const = [names[i] for i in np.flatnonzero(scale <= 1e-12 * np.maximum(1.0, np.abs(mean) * np.sqrt(total)))]
    if const:
        raise ValueError(f"X is singular: constant among the rows at risk: {', '.join(const)}")
    corr = cross / np.outer(scale, scale)
    _, r, piv = linalg.qr(corr, pivoting=True)
    rank = int((np.abs(np.diag(r)) > 1e-10 * abs(r[0, 0])).sum())
    if rank < len(names):
        dropped = [names[i] for i in piv[rank:]]
        raise ValueError(f"X is singular (rank {rank} of {len(names)}): collinear columns, "
                         f"e.g. {', '.join(dropped)} depend on the others")
    return mean


def fit_counting_cox(start, stop, event, X, *, weights=None, names: Sequence[str] | None = None,
                     strata=None, tol: float = 1e-10, max_iter: int = 50) -> TVCoxResult:
    """Efron partial-likelihood Cox fit on counting-process rows (start, stop], as R's
    coxph(Surv(start, stop, event) ~ X, ties = "efron").

    start, stop: interval of each row (stop > start); event: 0/1 (or bool) at stop;
    X: (n, k) covariates (a DataFrame's column names become `names`); weights: integer
    replication counts (default 1), a row of weight w standing for w identical rows;
    strata: a label per row, risk sets within each (coxph's `+ strata(s)`).
    tol: convergence when |1 - loglik_old / loglik_new| <= tol (coxph's `eps`, default
    1e-9 there). Raises ValueError for invalid input (stop <= start, missing values,
    no events, singular X, non-integer weights)."""
    stop = _vector(stop, "stop")
    n = len(stop)
    if n == 0:
        raise ValueError("no rows")
    start = _vector(start, "start", n)
    ev = _vector(event, "event", n)
    if not np.isin(ev, (0.0, 1.0)).all():
        raise ValueError("event must be 0/1 (or False/True)")
    ev = ev.astype(bool)
    X, labels = _design(X, names, n)
    if weights is None:
        counts = np.ones(n)
    else:
        counts = _vector(weights, "weights", n)
        if (counts < 0).any() or (counts != np.round(counts)).any():
            raise ValueError("weights must be non-negative whole numbers (replication counts)")
    bad = np.flatnonzero(stop <= start)
    if len(bad):
        raise ValueError(f"{len(bad)} rows have stop <= start (first at row {bad[0]}: "
                         f"({start[bad[0]]:g}, {stop[bad[0]]:g}]); every interval needs positive length")
    if not (ev & (counts > 0)).any():
        raise ValueError("no events: the model cannot be fitted")
    if not (max_iter >= 1 and tol > 0):
        raise ValueError("max_iter must be >= 1 and tol > 0")

    n_rows, n_events = int(round(counts.sum())), int(round(counts[ev].sum()))
    if strata is not None:
        strata = np.asarray(strata)
        if strata.shape != (n,) or pd.isna(strata).any():
            raise ValueError(f"strata must give one non-missing label per row ({n})")
    problem = EfronProblem(stop, ev, X, counts, start=start, strata=strata)
    _check_rank(X[problem.kept], counts[problem.kept], labels)  # among the rows at risk at some event time
    fit = newton_raphson(problem, tol=tol, max_iter=max_iter)
    if not fit.converged:
        warnings.warn(f"fit_counting_cox did not converge in {max_iter} iterations", RuntimeWarning,
                      stacklevel=2)
    coef, iterations, new = fit.beta, fit.iterations, fit.loglik
    se = np.sqrt(np.diag(fit.var))
    z = coef / se
    with np.errstate(over="ignore"):  # a level with no events: HR heads to 0 or inf, CI to (0, inf)
        hr, ci = np.exp(coef), np.exp(np.column_stack([coef - _Z975 * se, coef + _Z975 * se]))
    return TVCoxResult(
        names=labels, coef=coef, se=se, hr=hr, ci=ci,
        p=2 * stats.norm.sf(np.abs(z)), loglik=new, n_rows=n_rows, n_events=n_events, iterations=iterations)
