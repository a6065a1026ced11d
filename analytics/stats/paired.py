"""Paired before/after tests, computed as R does (checked against R in tests/test_assessments_vs_r.py).

- paired_t: R's t.test(after, before, paired = TRUE): mean difference, 95% CI, p.
- wilcoxon_signed_rank: R's wilcox.test(after, before, paired = TRUE): zero differences
  dropped; the exact distribution when fewer than 50 remain, none tie and none was zero, else the normal
  approximation with continuity correction and the tie-corrected variance.
- mcnemar: R's mcnemar.test (correct = TRUE) on two paired yes/no answers.
- welch_t: R's t.test(x, y) (unequal variances), for lost vs followed at baseline.
Each returns NaN where R returns NaN or refuses (too few pairs, no discordant pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedT:
    n: int
    mean: float
    ci: tuple[float, float]
    p: float


def paired_t(after: np.ndarray, before: np.ndarray, level: float = 0.95) -> PairedT:
    d = np.asarray(after, float) - np.asarray(before, float)
    n = len(d)
    if n < 2 or np.ptp(d) == 0:
        mean = float(d.mean()) if n else float("nan")
        return PairedT(n, mean, (float("nan"), float("nan")), float("nan"))
    res = stats.ttest_1samp(d, 0.0)
    lo, hi = res.confidence_interval(level)
    return PairedT(n, float(d.mean()), (float(lo), float(hi)), float(res.pvalue))


def wilcoxon_signed_rank(after: np.ndarray, before: np.ndarray) -> float:
    """Two-sided p of the signed-rank test, as R's wilcox.test(paired = TRUE)."""
    d = np.asarray(after, float) - np.asarray(before, float)
    zeros = bool((d == 0).any())
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(d))
    ties = len(np.unique(np.abs(d))) < n
    if n < 50 and not ties and not zeros:
        return float(stats.wilcoxon(d, method="exact").pvalue)
    v = ranks[d > 0].sum()
    _, counts = np.unique(ranks, return_counts=True)
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (counts**3 - counts).sum() / 48)
    z = v - n * (n + 1) / 4
    z = (z - np.sign(z) * 0.5) / sigma
    return float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))


def mcnemar(before: np.ndarray, after: np.ndarray) -> float:
    """p of McNemar's chi-squared test with continuity correction (R's default)."""
    before, after = np.asarray(before, bool), np.asarray(after, bool)
    b = int((before & ~after).sum())
    c = int((~before & after).sum())
    if b + c == 0:
        return float("nan")
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return float(stats.chi2.sf(chi2, 1))


@dataclass(frozen=True)
class TwoMeans:
    n: tuple[int, int]
    means: tuple[float, float]
    difference: float
    ci: tuple[float, float]
    p: float


def welch_t(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> TwoMeans:
    x, y = np.asarray(x, float), np.asarray(y, float)
    nan = float("nan")
    if len(x) < 2 or len(y) < 2:
        return TwoMeans((len(x), len(y)), (float(np.mean(x)) if len(x) else nan,
                                           float(np.mean(y)) if len(y) else nan), nan, (nan, nan), nan)
    res = stats.ttest_ind(x, y, equal_var=False)
    lo, hi = res.confidence_interval(level)
    return TwoMeans((len(x), len(y)), (float(x.mean()), float(y.mean())), float(x.mean() - y.mean()),
                    (float(lo), float(hi)), float(res.pvalue))
