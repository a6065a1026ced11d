"""The attacker of official statistics (tau-ARGUS, sdcTable), as a test helper.

It takes everything one output publishes (each count as published, "<11", "*" or not shown),
the relations a reader knows among those counts (table totals, at risk = at risk before -
events - censored, the group rows adding up to All, rate x denominator = numerator, the
same cell printed in two places) and, for each count not published, solves two linear
programs (scipy.optimize.linprog) for the smallest and largest value it can take. A count
that may be small (1 to threshold - 1) must keep a range at least as wide as the "<11"
marker's own (1 to threshold - 1); a narrower range is a disclosure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from analytics.publish.disclosure import ALL, LifeTable
from analytics.publish.privacy import Protected


@dataclass
class Auditor:
    threshold: int
    bounds: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)
    equations: list[tuple[dict[str, float], float]] = field(default_factory=list)

    def var(self, name: str, lo: float = 0, hi: float | None = None) -> str:
        old_lo, old_hi = self.bounds.get(name, (0, None))
        new_hi = hi if old_hi is None else (old_hi if hi is None else min(old_hi, hi))
        self.bounds[name] = (max(old_lo, lo), new_hi)
        return name

    def publish(self, name: str, value: float) -> None:
        self.var(name, value, value)
        self.published.add(name)

    def equal(self, terms: dict[str, float], rhs: float = 0.0) -> None:
        for name in terms:
            self.var(name)
        self.equations.append((terms, rhs))

    def same(self, a: str, b: str) -> None:
        self.equal({a: 1, b: -1})

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Feasible [min, max] of every count not published."""
        names = list(self.bounds)
        index = {n: i for i, n in enumerate(names)}
        a_eq = np.zeros((len(self.equations), len(names)))
        for r, (terms, _) in enumerate(self.equations):
            for n, c in terms.items():
                a_eq[r, index[n]] += c
        b_eq = np.array([rhs for _, rhs in self.equations]) if self.equations else None
        bounds = [self.bounds[n] for n in names]
        out = {}
        for n in names:
            if n in self.published:
                continue
            c = np.zeros(len(names))
            c[index[n]] = 1
            lo = linprog(c, A_eq=a_eq if self.equations else None, b_eq=b_eq, bounds=bounds, method="highs")
            hi = linprog(-c, A_eq=a_eq if self.equations else None, b_eq=b_eq, bounds=bounds, method="highs")
            assert lo.status == 0, f"the published numbers contradict each other ({lo.message})"
            out[n] = (lo.fun, -hi.fun if hi.status == 0 else math.inf)
        return out

    def failures(self) -> list[str]:
        """Hidden counts that may be small and whose range is narrower than the marker's."""
        t = self.threshold
        bad = []
        for n, (lo, hi) in self.ranges().items():
            if lo >= t - 1e-6 or hi <= 1e-6:  # certainly publishable, or certainly nobody
                continue
            if hi - lo < t - 2 - 1e-6:
                bad.append(f"{n}: between {lo:g} and {hi:g}")
        return bad


# --- collectors: what one output publishes, and the relations among it -------------------

def add_table(aud: Auditor, p: Protected, prefix: str, *, total_row: str | None = ALL,
              rates: dict[str, tuple[str, str]] | None = None) -> None:
    """A protect()-ed table: each count a variable (published, "<11" -> 1..t-1, "*" -> 0 or more),
    column totals over the total row, and rate x denominator = numerator where a rate is shown."""
    t = aud.threshold
    for col in p.counts:
        for row in p.values.index:
            name = f"{prefix}:{col}:{row}"
            value = p.values.loc[row, col]
            if p.primary.loc[row, col]:
                aud.var(name, 1, t - 1)
            elif p.complementary.loc[row, col] or p.derived.loc[row, col] or pd.isna(value):
                aud.var(name)
            else:
                aud.publish(name, float(value))
        if total_row is not None and total_row in p.values.index:
            parts = [r for r in p.values.index if r != total_row]
            aud.equal({**{f"{prefix}:{col}:{r}": 1 for r in parts}, f"{prefix}:{col}:{total_row}": -1})
    for rate, (num, den) in (rates or {}).items():
        for row in p.values.index:
            value = p.values.loc[row, rate]
            if pd.notna(value):
                aud.equal({f"{prefix}:{num}:{row}": 1, f"{prefix}:{den}:{row}": -float(value)})


def add_life_table(aud: Auditor, lt: LifeTable, names: list[str], prefix: str) -> None:
    """A life table as published (chart: at risk, events and censored so far; table: n), with
    at risk(k+1) = at risk(k) - events(k) - censored(k) per group and the groups adding up to All.
    ``names``: every group, hidden ones included (their counts are unknowns)."""
    t = aud.threshold
    several = ALL in lt.groups
    groups = [*names, ALL] if several else names
    points = range(len(lt.points))
    for g in groups:
        shown = g in lt.groups
        last = lt.last.get(g, -1) if shown else -1
        for k in points:
            risk = aud.var(f"{prefix}:at_risk:{g}:{k}")
            if k <= last:
                aud.publish(risk, lt.at_risk[g][k])
            if k + 1 < len(lt.points):
                e, c = aud.var(f"{prefix}:events:{g}:{k}"), aud.var(f"{prefix}:censored:{g}:{k}")
                aud.equal({f"{prefix}:at_risk:{g}:{k + 1}": 1, risk: -1, e: 1, c: 1})
                if k < last:
                    aud.publish(e, lt.events[g][k])
                    aud.publish(c, lt.censored[g][k])
        n = f"{prefix}:at_risk:{g}:0"
        if not shown:
            aud.var(n, 1, t - 1) if lt.n[g] < t else aud.var(n)
    if several:
        cells = [("at_risk", k) for k in points] + [(w, k) for w in ("events", "censored") for k in points[:-1]]
        for what, k in cells:
            aud.equal({**{f"{prefix}:{what}:{g}:{k}": 1 for g in names}, f"{prefix}:{what}:{ALL}:{k}": -1})
