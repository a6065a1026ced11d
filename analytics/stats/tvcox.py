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

How it is fast: the event times are few, the rows many. Each row is at risk at the
event times with index in (b, a], a = #event times <= stop, b = #event times <= start,
so rows are sorted once by (a, b, event) and, per iteration, summed by group:
S0 = sum r, S1 = sum r x, S2 = sum r x x' (r = count * exp(x beta)); a group adds to the
event times up to a and is taken off those up to b (reverse cumulative sums over the
event times). Rows at risk at no event time are dropped up front. The Efron sums over
l = 0..d-1 reduce to five scalars per event time. No n x p x p array is ever built;
the cost per iteration is about one pass of n x p^2 multiply-adds (BLAS).

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
from scipy import linalg, sparse, stats

__all__ = ["TVCoxResult", "fit_counting_cox"]

_Z975 = stats.norm.ppf(0.975)
_SMALL_GROUPS = 64  # mean rows per group below which S2 is summed column by column


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


class _Problem:
    """Sorted, grouped data and the per-iteration sums (log-likelihood, score, information)."""

    def __init__(self, a, b, ev, X, counts, mean):
        """a, b: number of event times <= stop, <= start (a row is at risk at event times
        b < j <= a); only rows with a > b and a positive count are passed."""
        self.m = m = int(a.max())  # number of event times (an event row has a = its time's index)
        key = (a.astype(np.int64) * (m + 1) + b) * 2 + ev
        order = np.argsort(key, kind="stable")
        key = key[order]
        self.X = X[order]
        self.X -= mean
        self.c = counts[order]
        self.starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        self.bounds = np.r_[self.starts, len(key)]
        gkey = key[self.starts]
        ga, gb, gev = gkey // 2 // (m + 1), gkey // 2 % (m + 1), (gkey % 2).astype(bool)
        ng = len(gkey)
        # rows: bins 0..m (add at a, subtract at b), then deaths at event time 1..m (rows m+1..2m)
        dg = np.flatnonzero(gev)
        rows = np.r_[ga, gb, m + ga[dg]]
        cols = np.r_[np.arange(ng), np.arange(ng), dg]
        vals = np.r_[np.ones(ng), -np.ones(ng), np.ones(len(dg))]
        self.scatter = sparse.csr_matrix((vals, (rows, cols)), shape=(2 * m + 1, ng))
        self.by_column = len(key) < _SMALL_GROUPS * ng
        # Efron: d_j individual deaths at event time j, fractions l/d_j for l = 0..d_j-1
        dead = ev[order]
        d = np.round(np.bincount(a[order][dead] - 1, weights=self.c[dead], minlength=m)).astype(np.int64)
        self.n_deaths = int(d.sum())
        self.jj = np.repeat(np.arange(m), d)
        first = np.repeat(np.cumsum(d) - d, d)
        self.ff = (np.arange(self.n_deaths) - first) / np.repeat(d, d)
        self.xdead = self.c[dead] @ self.X[dead]  # sum of x over individual deaths
        self.p = X.shape[1]

    def evaluate(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        m, p, X = self.m, self.p, self.X
        eta = X @ beta
        shift = max(0.0, eta.max() - 300.0)  # keep exp finite; the partial likelihood ignores it
        r = self.c * np.exp(eta - shift)
        W = X * r[:, None]
        g0 = np.add.reduceat(r, self.starts)
        g1 = np.add.reduceat(W, self.starts, axis=0)
        g2 = np.empty((len(self.starts), p, p))
        if self.by_column:
            for i in range(p):
                g2[:, i, i:] = np.add.reduceat(W[:, i:i + 1] * X[:, i:], self.starts, axis=0)
                g2[:, i:, i] = g2[:, i, i:]
        else:
            bounds = self.bounds
            for g in range(len(self.starts)):
                lo, hi = bounds[g], bounds[g + 1]
                np.matmul(W[lo:hi].T, X[lo:hi], out=g2[g])
        sums = self.scatter @ np.column_stack([g0, g1, g2.reshape(len(g0), p * p)])
        risk = np.cumsum(sums[m::-1], axis=0)[::-1][1:]  # event times 1..m: rows at risk
        dead = sums[m + 1:]
        s0, s1, s2 = risk[:, 0], risk[:, 1:p + 1], risk[:, p + 1:].reshape(m, p, p)
        d0, d1, d2 = dead[:, 0], dead[:, 1:p + 1], dead[:, p + 1:].reshape(m, p, p)
        jj, ff = self.jj, self.ff
        den = s0[jj] - ff * d0[jj]
        inv = 1.0 / den
        inv2 = inv * inv
        a0 = np.bincount(jj, inv, m)
        a1 = np.bincount(jj, ff * inv, m)
        b0 = np.bincount(jj, inv2, m)
        b1 = np.bincount(jj, ff * inv2, m)
        b2 = np.bincount(jj, ff * ff * inv2, m)
        loglik = float(self.xdead @ beta - self.n_deaths * shift - np.log(den).sum())
        score = self.xdead - (a0 @ s1 - a1 @ d1)
        cross = (s1 * b1[:, None]).T @ d1
        info = (np.tensordot(a0, s2, 1) - np.tensordot(a1, d2, 1)
                - (s1 * b0[:, None]).T @ s1 + cross + cross.T - (d1 * b2[:, None]).T @ d1)
        return loglik, score, (info + info.T) / 2


def _cholesky(info: np.ndarray):
    try:
        return linalg.cho_factor(info)
    except linalg.LinAlgError:
        raise ValueError("the information matrix is singular: a covariate has no variation within "
                         "the risk sets at the event times") from None


def fit_counting_cox(start, stop, event, X, *, weights=None, names: Sequence[str] | None = None,
                     tol: float = 1e-10, max_iter: int = 50) -> TVCoxResult:
    """Efron partial-likelihood Cox fit on counting-process rows (start, stop], as R's
    coxph(Surv(start, stop, event) ~ X, ties = "efron").

    start, stop: interval of each row (stop > start); event: 0/1 (or bool) at stop;
    X: (n, k) covariates (a DataFrame's column names become `names`); weights: integer
    replication counts (default 1), a row of weight w standing for w identical rows.
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
    # centre on the rows that matter (at risk at some event time); estimates are unchanged
    times = np.unique(stop[ev & (counts > 0)])
    a = np.searchsorted(times, stop, side="right")  # event times <= stop
    b = np.searchsorted(times, start, side="right")  # event times <= start
    keep = np.flatnonzero((a > b) & (counts > 0))  # at risk at some event time
    X = X[keep]
    mean = _check_rank(X, counts[keep], labels)
    problem = _Problem(a[keep], b[keep], ev[keep], X, counts[keep], mean)

    k = X.shape[1]
    beta = np.zeros(k)
    old, score, info = problem.evaluate(beta)
    new_beta = beta + linalg.cho_solve(_cholesky(info), score)
    halving, converged, iterations = False, False, 0
    for iterations in range(1, max_iter + 1):  # coxph's agfit loop
        new, score, info = problem.evaluate(new_beta)
        if abs(old - new) <= tol * abs(new) and not halving:  # |1 - old/new| <= tol
            converged = True
            break
        if iterations == max_iter:
            break
        if new < old or not np.isfinite(new):
            halving = True
            new_beta = (new_beta + beta) / 2
        else:
            halving = False
            old, beta = new, new_beta
            new_beta = new_beta + linalg.cho_solve(_cholesky(info), score)
    if not converged:
        warnings.warn(f"fit_counting_cox did not converge in {max_iter} iterations", RuntimeWarning,
                      stacklevel=2)
    coef = new_beta
    var = linalg.cho_solve(_cholesky(info), np.eye(k))
    se = np.sqrt(np.diag(var))
    z = coef / se
    with np.errstate(over="ignore"):  # a level with no events: HR heads to 0 or inf, CI to (0, inf)
        hr, ci = np.exp(coef), np.exp(np.column_stack([coef - _Z975 * se, coef + _Z975 * se]))
    return TVCoxResult(
        names=labels, coef=coef, se=se, hr=hr, ci=ci,
        p=2 * stats.norm.sf(np.abs(z)), loglik=new, n_rows=n_rows, n_events=n_events, iterations=iterations)
