"""Kaplan-Meier curves, medians, survival at fixed times, RMST and log-rank tests.

Conventions (each matches R's survival package; tests compare with R live):
- Kaplan-Meier with Greenwood variance; 95% CI on the log-log scale, i.e. R's
  conf.type = "log-log" (R's default is "log"; log-log stays inside [0, 1] and
  behaves better in the tails).
- Median: the first time S(t) <= 0.5; where S(t) is exactly 0.5 over an interval,
  the midpoint of that interval (as R and SAS). Its CI: the same rule applied to
  the lower and upper confidence curves (R's quantile.survfit). Not reached: None.
- Survival at a time past a group's last follow-up is None (unknown), unless the
  curve has already reached 0.
- RMST: area under the curve up to the horizon, with R's variance
  sum A_j^2 d_j / (n_j (n_j - d_j)) over event times, and a normal 95% CI.
- Log-rank: the usual O - E test with hypergeometric variance over 2+ groups,
  optionally stratified (sums within strata, as survdiff(... + strata(x))).
  Pairwise tests use Holm's correction for multiplicity.

Distributions come from scipy.special, not scipy.stats: importing scipy.stats costs about
half a second of every command's start-up, and these two functions are all we need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtri

Z95 = float(ndtri(0.975))
TIMES = (30, 90, 180, 365)
RMST_HORIZON = 365
_TOL = np.sqrt(np.finfo(float).eps)


@dataclass
class KaplanMeier:
    """The curve at each distinct time: at risk, events, censored, S(t) and its CI."""

    table: pd.DataFrame  # time, n_risk, n_event, n_censor, surv, std_err (of log S), lower, upper
    n: int
    events: int

    def at(self, t: float) -> float | None:
        """S(t), right-continuous; None past the last follow-up unless S already hit 0."""
        tab = self.table
        if tab.empty:
            return None
        if t > tab.time.iloc[-1] and tab.surv.iloc[-1] > 0:
            return None
        before = tab[tab.time <= t]
        return 1.0 if before.empty else float(before.surv.iloc[-1])

    def quantile(self, p: float = 0.5) -> tuple[float | None, float | None, float | None]:
        """(estimate, lower, upper) of the time where the curve reaches 1 - p."""
        tab = self.table
        return (_first_time_at_or_below(tab.time, tab.surv, 1 - p),
                _first_time_at_or_below(tab.time, tab.lower, 1 - p),
                _first_time_at_or_below(tab.time, tab.upper, 1 - p))

    def rmst(self, horizon: float) -> tuple[float, float]:
        """Restricted mean survival time up to `horizon` and its standard error."""
        tab = self.table[self.table.time <= horizon]
        times = np.concatenate([[0.0], tab.time.to_numpy(float), [horizon]])
        surv = np.concatenate([[1.0], tab.surv.to_numpy(float)])
        areas = np.diff(times) * surv  # rectangle after each step
        value = float(areas.sum())
        # area from each event time to the horizon
        beyond = np.cumsum(areas[::-1])[::-1][1:]
        d, n = tab.n_event.to_numpy(float), tab.n_risk.to_numpy(float)
        ok = (d > 0) & (n > d)
        var = float(np.sum(beyond[ok] ** 2 * d[ok] / (n[ok] * (n[ok] - d[ok]))))
        return value, float(np.sqrt(var))


def actuarial_factor(at_risk: float, events: float, censored: float) -> float:
    """One interval's actuarial (Cutler-Ederer) survival factor 1 - events / (at risk - censored / 2),
    clamped to [0, 1]: counts perturbed independently (analytics.publish.cellkey) need not obey
    events + censored <= at risk, and a survival must stay a share. 1 when no one is at risk."""
    effective = at_risk - censored / 2
    return 1.0 if effective <= 0 else min(1.0, max(0.0, 1 - events / effective))


def actuarial(at_risk: Sequence[float], events: Sequence[float], censored: Sequence[float]) -> list[float]:
    """Actuarial survival at the start of each interval and at the end of the last (1.0 first): the
    running product of actuarial_factor over intervals given by their counts."""
    s, out = 1.0, [1.0]
    for r, e, c in zip(at_risk, events, censored):
        s *= actuarial_factor(r, e, c)
        out.append(s)
    return out


def _first_time_at_or_below(time: pd.Series, curve: pd.Series, level: float) -> float | None:
    """R's rule: first time the curve is <= level; midpoint if it sits exactly at level."""
    t = time.to_numpy(float)
    y = curve.to_numpy(float)
    hit = np.flatnonzero(~np.isnan(y) & (y <= level + _TOL))
    if hit.size == 0:
        return None
    i = hit[0]
    if abs(y[i] - level) < _TOL:
        later = np.flatnonzero(y[i + 1:] < level - _TOL)
        if later.size:
            return float((t[i] + t[i + 1 + later[0]]) / 2)
        return float(t[i]) if i == len(t) - 1 else float((t[i] + t[-1]) / 2)
    return float(t[i])


def kaplan_meier(days: np.ndarray, event: np.ndarray) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood variance and log-log 95% CI."""
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=bool)
    if days.size == 0:
        empty = pd.DataFrame(columns=["time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper"])
        return KaplanMeier(empty, 0, 0)
    times, inverse = np.unique(days, return_inverse=True)
    n_event = np.bincount(inverse, weights=event.astype(float), minlength=times.size)
    n_total = np.bincount(inverse, minlength=times.size).astype(float)
    n_risk = days.size - np.concatenate([[0.0], np.cumsum(n_total)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - n_event / n_risk)
        green = np.cumsum(np.where(n_risk > n_event, n_event / (n_risk * (n_risk - n_event)), 0.0))
    std_err = np.sqrt(green)
    lower, upper = _loglog_ci(surv, std_err)
    table = pd.DataFrame({"time": times, "n_risk": n_risk.astype(int), "n_event": n_event.astype(int),
                          "n_censor": (n_total - n_event).astype(int), "surv": surv, "std_err": std_err,
                          "lower": lower, "upper": upper})
    return KaplanMeier(table, int(days.size), int(event.sum()))


def _loglog_ci(surv: np.ndarray, std_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's conf.type = "log-log": S^exp(+-z se / log S); S = 1 gives (1, 1), S = 0 gives NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(surv)
        lower = surv ** np.exp(-Z95 * std_err / log_s)
        upper = surv ** np.exp(Z95 * std_err / log_s)
    at_one = surv >= 1 - _TOL
    lower[at_one], upper[at_one] = 1.0, 1.0
    at_zero = surv <= 0
    lower[at_zero], upper[at_zero] = np.nan, np.nan
    return lower, np.minimum(upper, 1.0)


@dataclass
class LogRank:
    chi2: float
    df: int
    p: float
    strata: str | None = None

    def to_json(self) -> dict:
        return {"chi2": self.chi2, "df": self.df, "p": self.p}


def logrank(days: np.ndarray, event: np.ndarray, group: np.ndarray,
            strata: np.ndarray | None = None) -> LogRank | None:
    """Log-rank test of equal survival across the levels of `group` (None for < 2 levels)."""
    levels, g = _codes(group)
    if levels.size < 2:
        return None
    return _logrank_codes(np.asarray(days, float), np.asarray(event, bool), g, levels.size,
                          None if strata is None else _codes(strata)[1])


def _codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels (as text) and each value's index into them; hashing, not a sort
    of every value, so the cost grows linearly with the rows."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)).astype(str), sort=True)
    return np.asarray(uniques, dtype=str), codes


def _logrank_codes(days: np.ndarray, event: np.ndarray, g: np.ndarray, k: int,
                   strata: np.ndarray | None) -> LogRank:
    """The log-rank test on group codes 0..k-1, summed within strata (codes) if given."""
    o_minus_e = np.zeros(k)
    var = np.zeros((k, k))
    if strata is None:
        parts = [slice(None)]
    else:
        order = np.argsort(strata, kind="stable")
        parts = np.split(order, np.flatnonzero(np.diff(strata[order])) + 1)
    for rows in parts:
        oe, v = _oe_var(days[rows], event[rows], g[rows], k)
        o_minus_e += oe
        var += v
    chi2 = float(o_minus_e[:-1] @ np.linalg.pinv(var[:-1, :-1]) @ o_minus_e[:-1])
    df = int(np.linalg.matrix_rank(var[:-1, :-1]))
    return LogRank(chi2, df, float(chdtrc(df, chi2)) if df else float("nan"))


def _oe_var(days: np.ndarray, event: np.ndarray, g: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed minus expected events per group and their covariance, within one stratum."""
    times, t_idx = np.unique(days, return_inverse=True)
    m = times.size
    at_exit = np.zeros((m, k))
    np.add.at(at_exit, (t_idx, g), 1.0)
    deaths = np.zeros((m, k))
    np.add.at(deaths, (t_idx[event], g[event]), 1.0)
    n_gj = at_exit[::-1].cumsum(axis=0)[::-1]  # at risk: days >= t
    keep = deaths.sum(axis=1) > 0
    n_gj, deaths = n_gj[keep], deaths[keep]
    n = n_gj.sum(axis=1)
    d = deaths.sum(axis=1)
    expected = n_gj * (d / n)[:, None]
    o_minus_e = (deaths - expected).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n - 1), 0.0) / n ** 2
    frac = n_gj
    var = np.diag((factor[:, None] * frac * n[:, None]).sum(axis=0)) - (frac.T * factor) @ frac
    return o_minus_e, var


def holm(p: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p values, as R's p.adjust(p, "holm"): the i-th smallest times
    (m - i + 1), made non-decreasing, capped at 1."""
    p = np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


@dataclass
class Pairwise:
    a: str
    b: str
    chi2: float
    p: float
    p_holm: float


def pairwise_logrank(days: np.ndarray, event: np.ndarray, group: np.ndarray,
                     strata: np.ndarray | None = None) -> list[Pairwise]:
    """Log-rank for every pair of groups, with Holm-adjusted p values."""
    days, event = np.asarray(days, float), np.asarray(event, bool)
    levels, g = _codes(group)
    s = None if strata is None else _codes(strata)[1]
    tests = []
    for i, j in combinations(range(levels.size), 2):
        rows = np.flatnonzero((g == i) | (g == j))
        res = _logrank_codes(days[rows], event[rows], (g[rows] == j).astype(np.int64), 2,
                             None if s is None else s[rows])
        if res.df:
            tests.append((str(levels[i]), str(levels[j]), res.chi2, res.p))
    if not tests:
        return []
    adjusted = holm([t[3] for t in tests])
    return [Pairwise(a, b, chi2, p, float(q)) for (a, b, chi2, p), q in zip(tests, adjusted)]


@dataclass
class GroupSummary:
    group: str
    n: int
    events: int
    median: float | None
    median_ci: tuple[float | None, float | None]
    survival: dict[int, float | None]
    rmst: dict = field(default_factory=dict)  # horizon, value, ci

    def to_json(self) -> dict:
        return {"group": self.group, "n": self.n, "events": self.events, "median_days": self.median,
                "median_ci": list(self.median_ci), "survival": {str(t): s for t, s in self.survival.items()},
                "rmst": self.rmst}


def summarize_group(name: str, km: KaplanMeier, times: tuple[int, ...] = TIMES,
                    horizon: int = RMST_HORIZON) -> GroupSummary:
    """Median, survival at `times` and RMST at `horizon` for one group.

    RMST is None when the group's follow-up ends before the horizon (and the curve has
    not reached 0): extending the last value flat, as R does, would be a guess.
    """
    median, lo, hi = km.quantile(0.5)
    rmst: dict = {"horizon": horizon, "value": None, "ci": [None, None]}
    if km.n and km.at(horizon) is not None:
        value, se = km.rmst(horizon)
        rmst.update(value=value, ci=[value - Z95 * se, value + Z95 * se])
    return GroupSummary(name, km.n, km.events, median, (lo, hi), {t: km.at(t) for t in times}, rmst)


def risk_table(days: np.ndarray, event: np.ndarray, times: list[int]) -> pd.DataFrame:
    """KMunicate-style counts at each time: at risk (followed to at least t), events and
    censorings before t. The three add up to n."""
    days = np.asarray(days, float)
    event = np.asarray(event, bool)
    rows = [{"time": t, "at_risk": int((days >= t).sum()), "events": int((event & (days < t)).sum()),
             "censored": int((~event & (days < t)).sum())} for t in times]
    return pd.DataFrame(rows)
