"""The one Efron partial likelihood behind every Cox fit (fixed, time-varying, cox.zph).

Data are counting-process rows (start, stop] with an event flag at stop, integer
replication counts and optional strata; a fixed-covariate Cox is the case where every
row is at risk from the beginning (start=None). Risk set at an event time t of stratum
s: the rows of s with start < t <= stop. Tied deaths use Efron's correction over the d
individual deaths at t (a row of count w is w deaths), so a table collapsed into
distinct patterns with counts gives exactly the fit of the expanded table. This is what
R's survival::coxph(..., ties = "efron") maximises for individual rows (not its case
`weights=`).

How it is fast: event times are few, rows many. A row is at risk at the event times
with index in (b, a] (a = event times of its stratum <= stop, b = <= start), so rows
are sorted once by (a, b, event) and per evaluation summed by group (S0 = sum r,
S1 = sum r x, r = count exp(x beta)); a group adds at a and is taken off at b (a
reverse cumulative sum over event times). Strata only renumber the event times: each
stratum owns a block of them. The Efron sums over l = 0..d-1 reduce to five scalars per
event time. The second moments are never summed per event time: sum_j a_j S2_j equals
sum_i r_i x_i x_i' (A(a_i) - A(b_i)) with A the cumulative sum of a over event times,
one weighted X'X (a BLAS product), and likewise for the deaths. So a step costs a few
passes over the n x p rows, and nothing of size n x p x p or m x p x p is built.

evaluate(beta, h) weights each event time's contribution to the score and information
by h (default 1): with h = g(t) and g(t)^2 this gives the blocks of the g(t) x terms
that R's cox.zph tests, since those share the risk sets of x.

newton_raphson follows coxph's agfit loop: start at 0, halve the step when the
log-likelihood falls, stop when |1 - loglik_old / loglik_new| <= tol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

__all__ = ["EfronProblem", "Fit", "newton_raphson"]


class EfronProblem:
    """Rows sorted and grouped once; evaluate() gives log-likelihood, score and information."""

    def __init__(self, stop: np.ndarray, event: np.ndarray, X: np.ndarray, counts: np.ndarray | None = None,
                 *, start: np.ndarray | None = None, strata: np.ndarray | None = None):
        """stop, event (bool), X (n, p), counts (replication, default 1); start None means
        at risk from the beginning; strata: any labels (default one stratum).
        Raises ValueError when there is no event."""
        n = len(stop)
        counts = np.ones(n) if counts is None else np.asarray(counts, float)
        event = np.asarray(event, bool)
        died = event & (counts > 0)
        a, b = np.empty(n, np.int64), np.zeros(n, np.int64)
        times, owners = [], []
        for k, rows in enumerate(_strata_rows(strata, n)):  # each stratum owns a block of event indices
            t = np.unique(stop[rows][died[rows]])
            offset = sum(len(x) for x in times)
            a[rows] = offset + np.searchsorted(t, stop[rows], side="right")  # event times <= stop
            b[rows] = offset + (0 if start is None else np.searchsorted(t, start[rows], side="right"))
            times.append(t)
            owners.append(np.full(len(t), k))
        self.event_times = np.concatenate(times)  # time of each event index
        self.event_strata = np.concatenate(owners)  # stratum (index into its sorted labels) of each
        if not len(self.event_times):
            raise ValueError("no events: the model cannot be fitted")
        keep = np.flatnonzero((a > b) & (counts > 0))  # at risk at some event time
        self.kept = keep
        self._group(a[keep], b[keep], event[keep], np.asarray(X, float)[keep], counts[keep])

    def _group(self, a: np.ndarray, b: np.ndarray, ev: np.ndarray, X: np.ndarray, counts: np.ndarray) -> None:
        self.m = m = len(self.event_times)
        key = (a.astype(np.int64) * (m + 1) + b) * 2 + ev
        order = np.argsort(key, kind="stable")
        key = key[order]
        self.mean = (counts @ X) / counts.sum()  # centring: estimates unchanged, exp() well scaled
        self.X = X[order] - self.mean
        self.c = counts[order]
        self.starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        self.bounds = np.r_[self.starts, len(key)]
        gkey = key[self.starts]
        ga, gb, gev = gkey // 2 // (m + 1), gkey // 2 % (m + 1), (gkey % 2).astype(bool)
        ng = len(gkey)
        # rows of the scatter: bins 0..m (add at a, subtract at b), then deaths at event time 1..m
        dg = np.flatnonzero(gev)
        rows = np.r_[ga, gb, m + ga[dg]]
        cols = np.r_[np.arange(ng), np.arange(ng), dg]
        vals = np.r_[np.ones(ng), -np.ones(ng), np.ones(len(dg))]
        self.scatter = sparse.csr_matrix((vals, (rows, cols)), shape=(2 * m + 1, ng))
        self.a, self.b = a[order], b[order]  # each sorted row is at risk at event indices b < j <= a
        dead = ev[order]
        self.dead = np.flatnonzero(dead)
        at = self.a[dead] - 1  # event index of each death row
        self.at = at
        d = np.round(np.bincount(at, weights=self.c[dead], minlength=m)).astype(np.int64)
        self.n_deaths = int(d.sum())
        self.jj = np.repeat(np.arange(m), d)  # event index of each individual death
        first = np.repeat(np.cumsum(d) - d, d)
        self.ff = (np.arange(self.n_deaths) - first) / np.repeat(d, d)  # l / d_j, l = 0..d_j-1
        self.p = X.shape[1]
        # sum of x over the individual deaths at each event time (m, p)
        self.Xd = self.X[dead]
        self.xdead = sparse.csr_matrix((self.c[dead], (at, np.arange(len(at)))), shape=(m, len(at))) @ self.Xd

    def evaluate(self, beta: np.ndarray, h: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """(log partial likelihood, score, information) at beta; score and information with
        each event time weighted by h (length m; the log-likelihood ignores h)."""
        moments = self._moments(beta)
        return (moments[0], *self._derivatives(moments, h))

    def weighted(self, beta: np.ndarray, hs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(score, information) at beta for each event-time weighting in hs, sharing the risk sums."""
        moments = self._moments(beta)
        return [self._derivatives(moments, h) for h in hs]

    def _moments(self, beta: np.ndarray) -> tuple:
        """Log-likelihood and the risk-set sums at beta."""
        m, X = self.m, self.X
        eta = X @ beta
        shift = max(0.0, eta.max() - 300.0)  # keep exp finite; the partial likelihood ignores it
        r = self.c * np.exp(eta - shift)
        g0 = np.add.reduceat(r, self.starts)
        g1 = np.add.reduceat(X * r[:, None], self.starts, axis=0)
        sums = self.scatter @ np.column_stack([g0, g1])
        risk = np.cumsum(sums[m::-1], axis=0)[::-1][1:]  # event times 1..m: rows at risk
        dead = sums[m + 1:]
        s1, d1 = risk[:, 1:], dead[:, 1:]
        den = risk[:, 0][self.jj] - self.ff * dead[:, 0][self.jj]
        loglik = float(self.xdead.sum(axis=0) @ beta - self.n_deaths * shift - np.log(den).sum())
        return loglik, r, s1, d1, den

    def _derivatives(self, moments: tuple, h: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Score and information from the risk sums, event time j weighted by h_j."""
        _, r, s1, d1, den = moments
        m, X, jj, ff = self.m, self.X, self.jj, self.ff
        hw = np.ones(m) if h is None else np.asarray(h, float)
        inv = hw[jj] / den
        inv2 = inv / den
        a0 = np.bincount(jj, inv, m)
        a1 = np.bincount(jj, ff * inv, m)
        b0 = np.bincount(jj, inv2, m)
        b1 = np.bincount(jj, ff * inv2, m)
        b2 = np.bincount(jj, ff * ff * inv2, m)
        score = hw @ self.xdead - (a0 @ s1 - a1 @ d1)
        cum = np.r_[0.0, np.cumsum(a0)]
        w = r * (cum[self.a] - cum[self.b])  # sum_j a0_j S2_j = sum_i w_i x_i x_i'
        dx, dw = self.Xd, r[self.dead] * a1[self.at]  # sum_j a1_j D2_j over the death rows
        cross = (s1 * b1[:, None]).T @ d1
        info = ((X * w[:, None]).T @ X - (dx * dw[:, None]).T @ dx
                - (s1 * b0[:, None]).T @ s1 + cross + cross.T - (d1 * b2[:, None]).T @ d1)
        return score, (info + info.T) / 2


def _strata_rows(strata: np.ndarray | None, n: int) -> list:
    """Row selections, one per stratum (sorted labels); everything when there are no strata."""
    if strata is None:
        return [slice(None)]
    codes = np.unique(np.asarray(strata), return_inverse=True)[1].ravel()
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


@dataclass(frozen=True)
class Fit:
    """Newton-Raphson result: beta, the information there and its inverse (variance), the log-likelihood."""

    beta: np.ndarray
    info: np.ndarray
    var: np.ndarray
    loglik: float
    iterations: int
    converged: bool


def _cholesky(info: np.ndarray):
    try:
        return linalg.cho_factor(info)
    except (linalg.LinAlgError, ValueError):
        raise ValueError("the information matrix is singular: a covariate has no variation within "
                         "the risk sets at the event times") from None


def _solve(info: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """info^-1 rhs; where rounding has made info singular (an estimate running off to
    infinity: its information vanishes), the least-squares solution that leaves that
    direction alone, as coxph's cholesky2 sets a singular column's step to zero."""
    try:
        return linalg.cho_solve(linalg.cho_factor(info), rhs)
    except (linalg.LinAlgError, ValueError):
        return np.linalg.lstsq(info, rhs, rcond=1e-10)[0]


def newton_raphson(problem: EfronProblem, *, tol: float = 1e-10, max_iter: int = 50) -> Fit:
    """Maximise the partial likelihood as coxph's agfit does (from beta = 0, step halving,
    stop when the relative change in log-likelihood is <= tol, not while halving).
    ValueError when the information is singular at the start (collinear columns)."""
    beta = np.zeros(problem.p)
    old, score, info = problem.evaluate(beta)
    new_beta = beta + linalg.cho_solve(_cholesky(info), score)
    new, halving, converged, iterations = old, False, False, 0
    for iterations in range(1, max_iter + 1):
        new, score, info = problem.evaluate(new_beta)
        if abs(old - new) <= tol * abs(new) and not halving:
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
            new_beta = new_beta + _solve(info, score)
    var = _solve(info, np.eye(problem.p))
    return Fit(new_beta, info, var, new, iterations, converged)
