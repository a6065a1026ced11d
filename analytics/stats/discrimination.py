"""How well a score separates those who had an event from those who did not: the AUC
(the concordance of a score with a binary outcome) with DeLong's standard error, made
robust to repeated rows of the same person, and the paired difference of two scores.

AUC = P(score of a random positive > score of a random negative) + 0.5 P(tie): the
Mann-Whitney statistic, ties counting one half. DeLong et al. (1988) write its variance
with the structural components V10 (each positive: the share of negatives it outranks)
and V01 (each negative: the share of positives that outrank it). The AUC is, to first
order, A + sum_pos (V10 - A) / n1 + sum_neg (V01 - A) / n0; summing those terms by
cluster (a participant seen at several cutoffs) and taking K/(K-1) times the sum of the
squared cluster totals gives a variance that allows for rows of one person being
alike (as Obuchowski 1997 does for clustered ROC data). With one row per cluster it is
DeLong's variance up to factors (n-1)/n. CIs are Wald: AUC -/+ 1.96 SE, clipped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["AUC", "auc", "auc_difference"]

_Z975 = stats.norm.ppf(0.975)


@dataclass(frozen=True)
class AUC:
    """An AUC (or a difference of two) with its standard error and 95% CI."""

    estimate: float
    se: float
    ci: tuple[float, float]
    positives: int
    negatives: int


def _components(score: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray]:
    """AUC and each row's centred influence term (V10 - A)/n1 or (V01 - A)/n0."""
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("the AUC needs at least one row with and one without the event")
    every = stats.rankdata(score)  # mid-ranks: ties count one half
    own = np.empty(len(score))
    own[positive] = stats.rankdata(score[positive])
    own[~positive] = stats.rankdata(score[~positive])
    outranked = every - own  # rows of the other class with a lower score (+ half the ties)
    v10 = outranked[positive] / n0
    v01 = 1.0 - outranked[~positive] / n1
    area = float(v10.mean())
    influence = np.empty(len(score))
    influence[positive] = (v10 - area) / n1
    influence[~positive] = (v01 - area) / n0
    return area, influence


def _variance(influence: np.ndarray, cluster: np.ndarray | None) -> float:
    if cluster is None:
        totals, k = influence, len(influence)
    else:
        _, codes = np.unique(cluster, return_inverse=True)
        totals = np.bincount(codes.ravel(), weights=influence)
        k = len(totals)
    return float(k / (k - 1) * np.sum(totals**2)) if k > 1 else float("nan")


def _result(estimate: float, var: float, positive: np.ndarray, lo: float, hi: float) -> AUC:
    se = float(np.sqrt(var))
    ci = (max(lo, estimate - _Z975 * se), min(hi, estimate + _Z975 * se))
    return AUC(estimate, se, ci, int(positive.sum()), int((~positive).sum()))


def auc(score, event, cluster=None) -> AUC:
    """AUC of `score` (higher = more likely the event) for the 0/1 `event`, with a
    cluster-robust DeLong SE when `cluster` labels the rows (e.g. participant ids)."""
    score, positive = np.asarray(score, float), np.asarray(event, bool)
    area, influence = _components(score, positive)
    return _result(area, _variance(influence, cluster), positive, 0.0, 1.0)


def auc_difference(score_a, score_b, event, cluster=None) -> AUC:
    """AUC(a) - AUC(b) on the same rows, with the paired (cluster-robust) DeLong SE."""
    positive = np.asarray(event, bool)
    a, inf_a = _components(np.asarray(score_a, float), positive)
    b, inf_b = _components(np.asarray(score_b, float), positive)
    return _result(a - b, _variance(inf_a - inf_b, cluster), positive, -1.0, 1.0)
