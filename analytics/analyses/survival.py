"""One survival analysis as the CLI, the pages and the notebook show it.

analyse() gathers durations, Kaplan-Meier per group, the numbers-at-risk table, the
log-rank test (optionally stratified), pairwise tests, a Cox model and, for retention,
the cumulative incidence of competing exits. to_json() is the CLI's public JSON shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.stats import competing
from analytics.stats import survival
from analytics.access.roles import ANALYTICS, requires
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import GROUP_COLUMNS, Durations, OutcomeSettings, durations
from analytics.store.connection import Store

ALL = "all"


class NoData(ValueError):
    """The filters leave nobody (or no follow-up) to analyse."""


@dataclass
class SurvivalAnalysis:
    durations: Durations
    by: str | None
    strata: str | None
    groups: list[survival.GroupSummary]
    curves: dict[str, survival.KaplanMeier]
    risk: pd.DataFrame  # group, time, at_risk, events, censored
    logrank: survival.LogRank | None
    pairwise: list[survival.Pairwise]
    cox: object | None = None  # analytics.stats.cox.CoxResult
    incidence: pd.DataFrame | None = None  # retention: group, exit_type, time, incidence, lower, upper
    warnings: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.durations.outcome

    def summary_table(self) -> pd.DataFrame:
        """One row per group: n, events, median (95% CI), survival at fixed times, RMST.
        Values not reached or past follow-up are None."""
        rows = []
        for g in self.groups:
            row = {"group": g.group, "n": g.n, "events": g.events, "median_days": g.median,
                   "median_lower": g.median_ci[0], "median_upper": g.median_ci[1]}
            row |= {f"survival_{t}": s for t, s in g.survival.items()}
            row |= {f"rmst_{g.rmst['horizon']}": g.rmst["value"]}
            rows.append(row)
        return pd.DataFrame(rows)

    def incidence_at(self, times: tuple[int, ...]) -> pd.DataFrame:
        """Retention: each group's cumulative incidence of each exit type at `times`
        (None past that group's follow-up)."""
        if self.incidence is None:
            raise ValueError("cumulative incidence is computed for retention only")
        frames = [competing.incidence_at(sub, times, self.curves[g].table.time.max()).assign(group=g)
                  for g, sub in self.incidence.groupby("group")]
        return pd.concat(frames, ignore_index=True)

    def to_json(self) -> dict:
        d = self.durations
        cox = self.cox.to_json() if self.cox is not None else {"cox": [], "ph_test": []}
        return {
            "outcome": d.outcome, "by": self.by, "n": d.n, "events": d.events, "left_out": d.left_out,
            "groups": [g.to_json() for g in self.groups],
            "logrank": self.logrank.to_json() if self.logrank else None,
            "cox": cox["cox"], "ph_test": cox["ph_test"],
            "strata": self.strata,
            "pairwise": [{"a": p.a, "b": p.b, "chi2": p.chi2, "p": p.p, "p_holm": p.p_holm}
                         for p in self.pairwise],
            "cutoff": d.cutoff.isoformat(), "inactivity_days": d.settings.inactivity_days,
            "definition": d.describe(), "ci": "95%, log-log transform (R conf.type='log-log')",
            "warnings": self.warnings,
        }


def risk_times(max_days: float, step: int = 90) -> list[int]:
    """0, 90, 180, ... up to the longest follow-up (at least 365)."""
    return list(range(0, int(max(max_days, 365)) + 1, step))


@requires(ANALYTICS)
def analyse(store: Store, outcome: str, *, by: str | None = None, adjust: Sequence[str] = (),
            strata: str | None = None, settings: OutcomeSettings = OutcomeSettings(),
            filters: Filters = Filters(), times: tuple[int, ...] = survival.TIMES,
            horizon: int = survival.RMST_HORIZON, incidence: bool = True) -> SurvivalAnalysis:
    """The whole analysis for one outcome, split by `by`, Cox-adjusted for `adjust`.
    `incidence=False` skips the competing-risk curves (retention), which the CLI does not print."""
    for col in [by, strata, *adjust]:
        if col is not None and col not in GROUP_COLUMNS:
            raise ValueError(f"cannot group by {col!r}: use one of {', '.join(GROUP_COLUMNS)}")
    dur = durations(store, outcome, settings, filters)
    frame = dur.frame
    if frame.empty:
        left = "; ".join(f"{n} {why}" for why, n in dur.left_out.items())
        raise NoData(f"no participants to analyse for {dur.filters.describe()}"
                     + (f" (left out: {left})" if left else ""))
    labels = frame[by].astype(str) if by else pd.Series(ALL, index=frame.index)
    curves, groups, risk = {}, [], []
    for name in sorted(labels.unique()):
        sub = frame[labels == name]
        km = survival.kaplan_meier(sub.days.to_numpy(), sub.event.to_numpy())
        curves[name] = km
        groups.append(survival.summarize_group(name, km, times, horizon))
        risk.append(survival.risk_table(sub.days, sub.event, risk_times(frame.days.max())).assign(group=name))
    stratum = frame[strata].to_numpy() if strata else None
    test = survival.logrank(frame.days, frame.event, labels, stratum) if by else None
    pairs = survival.pairwise_logrank(frame.days, frame.event, labels, stratum) if by and len(curves) > 2 else []
    result = SurvivalAnalysis(dur, by, strata, groups, curves, pd.concat(risk, ignore_index=True), test, pairs)
    covariates = list(dict.fromkeys([c for c in [by, *adjust] if c]))
    if covariates:
        result.cox = _fit_cox(frame, covariates, result.warnings)
    if outcome == "retention" and incidence:
        result.incidence = pd.concat(
            [competing.cumulative_incidence(frame.days[labels == g], frame.event_type[labels == g]).assign(group=g)
             for g in curves], ignore_index=True)
    return result


def _fit_cox(frame: pd.DataFrame, covariates: list[str], warnings: list[str]):
    from analytics.stats.cox import fit_cox

    try:
        fit = fit_cox(frame, covariates)
    except ValueError as exc:
        warnings.append(f"Cox model not fitted: {exc}")
        return None
    warnings.extend(fit.warnings)
    return fit


def _num(x: float | None, fmt: str = "{:.0f}") -> str:
    return "not reached" if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)


def format_text(a: SurvivalAnalysis) -> str:
    """A readable report for the terminal."""
    d = a.durations
    lines = [f"Outcome: {d.describe()}"]
    if d.left_out:
        lines.append("Left out: " + "; ".join(f"{n} {why}" for why, n in d.left_out.items()))
    times = list(a.groups[0].survival)
    head = f"{'group':<28} {'n':>6} {'events':>6} {'median (95% CI)':>24} " + " ".join(
        f"{'S(' + str(t) + ')':>7}" for t in times) + f" {'RMST' + str(a.groups[0].rmst['horizon']):>16}"
    lines += ["", head]
    for g in a.groups:
        ci = f"({_num(g.median_ci[0])}-{_num(g.median_ci[1])})"
        surv = " ".join(f"{'-' if g.survival[t] is None else format(g.survival[t], '.3f'):>7}" for t in times)
        r = g.rmst
        rmst = "not estimable" if r["value"] is None else f"{r['value']:.1f} ({r['ci'][0]:.0f}-{r['ci'][1]:.0f})"
        lines.append(f"{g.group[:28]:<28} {g.n:>6} {g.events:>6} {_num(g.median) + ' ' + ci:>24} {surv} "
                     f"{rmst:>16}")
    if a.logrank:
        strat = f", stratified by {a.strata}" if a.strata else ""
        lines += ["", f"Log-rank{strat}: chi2 = {a.logrank.chi2:.2f} on {a.logrank.df} df, p = {a.logrank.p:.4g}"]
    for p in a.pairwise:
        lines.append(f"  {p.a} vs {p.b}: chi2 = {p.chi2:.2f}, p = {p.p:.4g}, Holm-adjusted p = {p.p_holm:.4g}")
    if a.cox is not None:
        lines += ["", "Cox model (Efron ties): hazard ratios with 95% CI"]
        for t in a.cox.to_json()["cox"]:
            lines.append(f"  {t['term']}: {t['level']} vs {t['reference']}: HR {t['hr']:.2f} "
                         f"({t['ci'][0]:.2f}-{t['ci'][1]:.2f}), p = {t['p']:.4g}")
        for t in a.cox.to_json()["ph_test"]:
            lines.append(f"  PH test {t['term']}: chi2 = {t['chi2']:.2f} on {t['df']} df, p = {t['p']:.4g}")
    lines += [f"Warning: {w}" for w in a.warnings]
    lines.append("Survival CIs: 95%, log-log transform; '-': past the group's follow-up. "
                 "Associations are not proof of cause.")
    return "\n".join(lines)
