"""R's survival 3.x cox.zph (transform "km", terms=TRUE) on the Efron engine.

The PH test (cox.zph, transform="km", terms=TRUE): at the fitted beta, the score test
for adding the time-varying terms g(t)*x, where g(t) = 1 - KM(t-) of the whole sample,
centred on its mean over the event times. For a covariate with k levels the k-1 g*x
terms are tested together (k-1 df); GLOBAL tests all of them. The variance comes from
the information matrix of (x, g*x) at beta with the Efron tie correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from analytics.stats.efron import EfronProblem

__all__ = ["PHTest", "zph_on_problem", "zph_test"]


@dataclass
class PHTest:
    """cox.zph row for one covariate (all its dummies together) or "GLOBAL"."""

    term: str
    chi2: float
    df: int
    p: float



def _km_transform(time: np.ndarray, event: np.ndarray, counts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """cox.zph's "km" g(t) at the event times `at`: 1 - KM just before t (of every row,
    each `counts` times), centred on its mean over the individual events."""
    u, inverse = np.unique(time, return_inverse=True)
    total = np.bincount(inverse, counts, minlength=len(u))
    at_risk = total[::-1].cumsum()[::-1]
    died = np.bincount(inverse, counts * event, minlength=len(u))
    surv = np.cumprod(1.0 - died / at_risk)
    g = 1.0 - np.concatenate([[1.0], surv[:-1]])  # value at the previous distinct time
    g -= (g * died).sum() / died.sum()
    return g[np.searchsorted(u, at)]


def zph_test(time: np.ndarray, event: np.ndarray, X: np.ndarray, beta: np.ndarray,
             groups: Mapping[str, Sequence[int]], counts: np.ndarray | None = None) -> list[PHTest]:
    """R's cox.zph table (transform "km", terms=TRUE): one row per group of columns, then GLOBAL.
    `counts`: how many participants each row stands for (default 1)."""
    time, event, X = np.asarray(time, float), np.asarray(event, bool), np.asarray(X, float)
    counts = np.ones(len(time)) if counts is None else np.asarray(counts, float)
    return zph_on_problem(EfronProblem(time, event, X, counts), time, event, counts, np.asarray(beta, float), groups)


def zph_on_problem(problem: EfronProblem, time: np.ndarray, event: np.ndarray, counts: np.ndarray, beta: np.ndarray,
         groups: Mapping[str, Sequence[int]]) -> list[PHTest]:
    """The score test for adding g(t) x at beta: the g x terms share the risk sets of x, so
    their blocks are the engine's score and information with event time j weighted by g_j, g_j^2."""
    p = len(beta)
    g = _km_transform(time, event, counts, problem.event_times)
    (_, i11), (u2, i12), (_, i22) = problem.weighted(beta, [None, g, g ** 2])
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
