"""The attacker of official statistics (tau-ARGUS, sdcTable): linear programming over what an
output publishes.

Each count is a variable: published ones fixed, hidden ones bounded ("<11" is 1 to threshold - 1,
"*" is 0 or more; a count perturbed by the cell key method is its published value +/- 2). The relations a reader knows (totals, at risk = at risk before - events -
censored, the same cell in two places) are equations. For every count not published, two linear
programs (scipy.optimize.linprog) give the smallest and largest value it can take; a count that
may be small must keep a range at least as wide as the "<11" marker's own, else it is disclosed.
``analytics.publish.disclosure`` uses it to prove each group's life-table grid safe; the tests
use it over whole outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

if TYPE_CHECKING:
    from analytics.publish.disclosure import LifeTable

__all__ = ["Auditor", "add_life_table"]

ALL = "All"


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

    def publish(self, name: str, value: float, noise: int = 0) -> None:
        """A count as published. ``noise``: perturbed by up to that much (the cell key method), so
        the true count is in [value - noise, value + noise], and at least 1 unless published as 0."""
        if noise and value > 0:
            self.var(name, max(1, value - noise), value + noise)
        else:
            self.var(name, value, value)
        self.published.add(name)

    def equal(self, terms: dict[str, float], rhs: float = 0.0) -> None:
        for name in terms:
            self.var(name)
        self.equations.append((terms, rhs))

    def same(self, a: str, b: str) -> None:
        self.equal({a: 1, b: -1})

    def ranges(self, quick: bool = False, only: set[str] | None = None,
               markers_only: bool = False) -> dict[str, tuple[float, float]]:
        """Feasible [min, max] of every count not published (or of ``only``). ``quick``: no maximum
        where the minimum is at least the threshold. ``markers_only``: as if no number were
        published, only the markers ("<11", "*") and the relations."""
        names = list(self.bounds)
        index = {n: i for i, n in enumerate(names)}
        a_eq = np.zeros((len(self.equations), len(names)))
        for r, (terms, _) in enumerate(self.equations):
            for n, c in terms.items():
                a_eq[r, index[n]] += c
        b_eq = np.array([rhs for _, rhs in self.equations]) if self.equations else None
        bounds = [(0, None) if markers_only and n in self.published else self.bounds[n] for n in names]
        out = {}
        for n in names:
            if n in self.published or (only is not None and n not in only):
                continue
            c = np.zeros(len(names))
            c[index[n]] = 1
            lo = linprog(c, A_eq=a_eq if self.equations else None, b_eq=b_eq, bounds=bounds, method="highs")
            if lo.status != 0:
                raise ValueError(f"the published numbers contradict each other ({lo.message})")
            if quick and lo.fun >= self.threshold - 1e-6:  # certainly publishable: its maximum does not matter
                out[n] = (lo.fun, math.inf)
                continue
            hi = linprog(-c, A_eq=a_eq if self.equations else None, b_eq=b_eq, bounds=bounds, method="highs")
            out[n] = (lo.fun, -hi.fun if hi.status == 0 else math.inf)
        return out

    def failures(self) -> list[str]:
        """Hidden counts that may be small and whose range the published numbers make narrower than
        the marker's (1 to threshold - 1) and narrower than the markers alone make it (a hidden total
        "<11" over two "<11" parts already caps each part at 9: no number published says that)."""
        t = self.threshold
        narrow = {n: (lo, hi) for n, (lo, hi) in self.ranges(quick=True).items()
                  if lo < t - 1e-6 and hi > 1e-6 and hi - lo < t - 2 - 1e-6}
        if not narrow:
            return []
        alone = self.ranges(only=set(narrow), markers_only=True)
        return [f"{n}: between {lo:g} and {hi:g}" for n, (lo, hi) in narrow.items()
                if hi - lo < alone[n][1] - alone[n][0] - 1e-6]


def add_life_table(aud: Auditor, lt: "LifeTable", names: list[str], prefix: str,
                   kinds_published: bool = True) -> None:
    """A life table as published (chart: at risk, events and censored so far; table: n). Unknowns:
    every group's at risk at each of All's days and its events and censorings between them, with
    at risk(k+1) = at risk(k) - events(k) - censored(k), the groups adding up to All, and each
    published count of a group equal to the sum of its unknowns over its own (coarser) interval.
    ``names``: every group, hidden ones included (their counts are unknowns). Events split by kind
    (``lt.kinds``): each kind's count is an unknown too, the kinds adding up to the events; published
    as the group's counts are when ``kinds_published`` (a cumulative incidence with the published
    at risk and censored gives them away), else left for the caller to relate (the incidences)."""
    t = aud.threshold
    several = ALL in lt.groups and names
    groups = [*names, ALL] if several else (names or [ALL])
    points = list(lt.points)
    for g in groups:
        for k in range(len(points)):
            risk = aud.var(f"{prefix}:at_risk:{g}:{k}")
            if k + 1 < len(points):
                e, c = aud.var(f"{prefix}:events:{g}:{k}"), aud.var(f"{prefix}:censored:{g}:{k}")
                aud.equal({f"{prefix}:at_risk:{g}:{k + 1}": 1, risk: -1, e: 1, c: 1})
                if lt.kinds:
                    aud.equal({**{f"{prefix}:{kind}:{g}:{k}": 1 for kind in lt.kinds}, e: -1})
        if g in lt.groups:
            grid = [points.index(d) for d in lt.grids[g]]
            for j, k in enumerate(grid):
                aud.publish(f"{prefix}:at_risk:{g}:{k}", lt.at_risk[g][j], lt.noise)
            for j, (k0, k1) in enumerate(zip(grid, grid[1:])):
                kinds = [(kind, lt.kind_events[kind][g][j]) for kind in lt.kinds] if kinds_published else []
                for what, value in (("events", lt.events[g][j]), ("censored", lt.censored[g][j]), *kinds):
                    if k1 == k0 + 1:  # one of All's intervals: the unknown itself is published
                        aud.publish(f"{prefix}:{what}:{g}:{k0}", value, lt.noise)
                        continue
                    name = f"{prefix}:{what}:{g}:{k0}-{k1}"
                    aud.equal({**{f"{prefix}:{what}:{g}:{k}": 1 for k in range(k0, k1)}, name: -1})
                    aud.publish(name, value, lt.noise)
        elif lt.n[g] < t:
            aud.var(f"{prefix}:at_risk:{g}:0", 1, t - 1 + lt.noise)
    if several:
        cells = [("at_risk", k) for k in range(len(points))] + [
            (w, k) for w in ("events", "censored", *lt.kinds) for k in range(len(points) - 1)]
        for what, k in cells:
            aud.equal({**{f"{prefix}:{what}:{g}:{k}": 1 for g in names}, f"{prefix}:{what}:{ALL}:{k}": -1})
