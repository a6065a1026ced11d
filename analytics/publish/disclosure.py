"""Protected survival: a life table whose every published count is 0 or at least the threshold.

Why: a Kaplan-Meier curve published step by step shows each event (a fall from 92.9% to
85.7% is one person), and a numbers-at-risk row beside a table lets a reader subtract one
group from the total. Statistical agencies publish survival as a *life table*: counts per
fixed interval, survival by the actuarial (Cutler-Ederer) method. Here the intervals are
merged until every published cell holds no one or at least ``threshold`` people, so every
number of a survival section (curve points, numbers at risk, the table, medians, the
90-day value repeated in "Outcomes by program") is a function of protected counts only.

One grid for all groups of an output, so "All minus the groups shown" is a cell too:

- Groups of fewer than ``threshold`` people are not shown. The hidden groups together (the
  *rest*, All minus the groups shown) must hold 0 or at least ``threshold`` people in every
  cell, else the smallest shown group is hidden as well (complementary suppression).
- From day 0, an interval ``[a, b)`` ends at the first candidate day ``b`` where, for all
  participants, the events and the censorings in ``[a, b)`` are each 0 or at least
  ``threshold`` and at least ``threshold`` remain at risk at ``b`` (else the interval is
  merged with the next). A group whose own cell is not publishable so stops at ``a`` (it
  joins the rest from then on), and the smallest groups stop too until the rest's cell is
  publishable.
- The table ends when no candidate day qualifies for all participants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.publish import privacy

__all__ = ["ALL", "LifeTable", "METHOD", "life_table", "protected_table"]

ALL = "All"
METHOD = ("Survival is published as an actuarial life table (Cutler-Ederer): counts per interval, survival "
          "at each interval's end = the product of (1 - events / (at risk - censored / 2)). Intervals start "
          "from fixed days and are merged until every published count (events, censorings and numbers at "
          "risk of each group, of the groups not shown together, and of all) is 0 or at least {t}; a curve "
          "stops where fewer than {t} remain at risk. Medians are interpolated within the interval where the "
          "survival crosses 50%. Against Kaplan-Meier this moves survival at the published days by at most "
          "about half the censored share of an interval.")


@dataclass(frozen=True)
class LifeTable:
    """Counts per group on one grid. ``points``: the published days (0 first). Per group:
    ``at_risk[g][k]`` at ``points[k]``, ``events[g][k]``/``censored[g][k]`` in
    ``[points[k], points[k+1])``, ``survival[g][k]`` at ``points[k]``; ``last[g]``: the index of
    the group's last published point (its curve stops there)."""

    points: tuple[int, ...]
    groups: tuple[str, ...]            # shown, All last when there are several groups
    hidden: tuple[str, ...]            # groups not shown (fewer than threshold, or complements)
    n: dict[str, int]
    at_risk: dict[str, list[int]]
    events: dict[str, list[int]]
    censored: dict[str, list[int]]
    last: dict[str, int]
    threshold: int

    def survival(self, group: str) -> list[float]:
        """Actuarial survival at each published point of ``group`` (1.0 at day 0)."""
        s, out = 1.0, [1.0]
        for k in range(self.last[group]):
            effective = self.at_risk[group][k] - self.censored[group][k] / 2
            s *= 1 - self.events[group][k] / effective if effective > 0 else 1
            out.append(s)
        return out

    def at(self, group: str, day: int) -> tuple[float | None, int | None]:
        """(survival, at risk) at ``day`` when it is a published point of the group, else (None, None)."""
        if group not in self.last or day not in self.points or self.points.index(day) > self.last[group]:
            return None, None
        k = self.points.index(day)
        return self.survival(group)[k], self.at_risk[group][k]

    def median(self, group: str) -> float | None:
        """Day the survival crosses 50%, linear within its interval; None when not reached."""
        s = self.survival(group)
        for k in range(1, len(s)):
            if s[k] <= 0.5:
                a, b = self.points[k - 1], self.points[k]
                return a + (b - a) * (s[k - 1] - 0.5) / (s[k - 1] - s[k]) if s[k - 1] > s[k] else float(a)
        return None

    def rows(self) -> pd.DataFrame:
        """One row per group and published point: group, time, at_risk, events, censored (in the
        interval from that point on; blank at the last point) and survival."""
        out = []
        for g in self.groups:
            surv = self.survival(g)
            for k in range(self.last[g] + 1):
                inside = k < self.last[g]
                out.append({"group": g, "time": self.points[k], "at_risk": self.at_risk[g][k],
                            "events": self.events[g][k] if inside else np.nan,
                            "censored": self.censored[g][k] if inside else np.nan, "survival": surv[k]})
        return pd.DataFrame(out, columns=["group", "time", "at_risk", "events", "censored", "survival"])

    def method(self) -> str:
        return METHOD.format(t=self.threshold)


def _ok(count: int, t: int) -> bool:
    return count == 0 or count >= t


def _count(days: np.ndarray, event: np.ndarray, a: int, b: float) -> tuple[int, int, int]:
    """(events in [a, b), censored in [a, b), at risk at b)."""
    inside = (days >= a) & (days < b)
    return int((inside & event).sum()), int((inside & ~event).sum()), int((days >= b).sum())


def life_table(days: np.ndarray, event: np.ndarray, group: Sequence[str] | np.ndarray, candidates: Iterable[int],
               threshold: int = privacy.DEFAULT_THRESHOLD, hide: Iterable[str] = ()) -> LifeTable:
    """The protected life table of the module docstring. ``hide``: groups hidden elsewhere in the
    same output (so that a group is hidden everywhere or nowhere)."""
    t = privacy.check_threshold(threshold)
    days, event, group = np.asarray(days), np.asarray(event, dtype=bool), np.asarray(group, dtype=object)
    names = sorted(set(group.tolist()))
    sets = {g: group == g for g in names}
    sizes = {g: int(m.sum()) for g, m in sets.items()}
    shown = _shown_groups(sizes, set(hide), t)
    several = len(names) > 1
    cands = sorted({int(c) for c in candidates if c > 0})
    points, continuing = [0], list(shown)
    stops: dict[str, int] = {}
    counts: dict[str, tuple[list[int], list[int], list[int]]] = {g: ([sizes[g]], [], []) for g in names}
    counts[ALL] = ([len(days)], [], [])
    a = 0
    while True:
        step = _next_step(days, event, sets, a, cands, continuing, t)
        if step is None:
            break
        b, still = step
        for g in continuing:
            if g not in still:
                stops[g] = len(points) - 1
        for g in [*names, ALL]:
            mask = sets.get(g, np.ones(len(days), dtype=bool))
            e, c, r = _count(days[mask], event[mask], a, b)
            counts[g][1].append(e)
            counts[g][2].append(c)
            counts[g][0].append(r)
        points.append(b)
        continuing, a = still, b
    for g in continuing:
        stops[g] = len(points) - 1
    groups = tuple([*shown, ALL] if several else names)
    last = {g: stops.get(g, 0) for g in shown}
    last[ALL] = len(points) - 1
    if not several:
        last = {names[0]: last[ALL]} if names else {}
        counts[names[0]] = counts[ALL] if names else counts[ALL]
    return LifeTable(tuple(points), groups, tuple(g for g in names if g not in shown), {**sizes, ALL: len(days)},
                     {g: counts[g][0] for g in groups}, {g: counts[g][1] for g in groups},
                     {g: counts[g][2] for g in groups}, last, t)


def _shown_groups(sizes: dict[str, int], hide: set[str], t: int) -> list[str]:
    """Groups of at least ``t`` not hidden elsewhere; complements hidden until the rest is 0 or >= t."""
    shown = sorted((g for g, n in sizes.items() if n >= t and g not in hide), key=lambda g: (sizes[g], g))
    if len(sizes) <= 1:
        return list(sizes)
    while shown and not _ok(sum(sizes.values()) - sum(sizes[g] for g in shown), t):
        shown.pop(0)
    return sorted(shown)


def _next_step(days: np.ndarray, event: np.ndarray, sets: dict[str, np.ndarray], a: int, cands: list[int],
               continuing: list[str], t: int) -> tuple[int, list[str]] | None:
    """The first candidate b > a where everyone's cell is publishable, and the groups still shown at b:
    those whose own cell is publishable, fewer (smallest first) until the rest's cell is too."""
    everyone = np.ones(len(days), dtype=bool)
    for b in (c for c in cands if c > a):
        if not _ok_cell(days, event, everyone, a, b, t, need_risk=True):
            continue
        still = sorted((g for g in continuing if _ok_cell(days, event, sets[g], a, b, t, need_risk=True)),
                       key=lambda g: (int(sets[g].sum()), g))
        while still and not _ok_cell(days, event, everyone & ~np.any([sets[g] for g in still], axis=0), a, b, t):
            still.pop(0)
        return b, sorted(still)
    return None


def _ok_cell(days: np.ndarray, event: np.ndarray, mask: np.ndarray, a: int, b: int, t: int,
             need_risk: bool = False) -> bool:
    e, c, r = _count(days[mask], event[mask], a, b)
    return _ok(e, t) and _ok(c, t) and (r >= t if need_risk else _ok(r, t))


def protected_table(lt: LifeTable, times: Sequence[int], prefix: str = "survival",
                    known: dict[str, set[int]] | None = None) -> privacy.Protected:
    """The life table at fixed ``times`` as a table: n, then per time the survival and the number
    at risk, then the median. A time that is not a published point of a group is blank (not
    known, or fewer than the threshold followed); a hidden group's row shows its n as "<11" or
    "*" and nothing else. ``known``: per group the times whose value may be shown at all
    (others blank, e.g. not everyone followed that long yet)."""
    t = lt.threshold
    order = [g for g in lt.groups if g != ALL] + list(lt.hidden) + ([ALL] if ALL in lt.groups else [])
    cols = ["n", *(c for d in times for c in (f"{prefix}_{d}", f"at_risk_{d}")), "median_days"]
    rows = []
    for g in order:
        row = {"n": float(lt.n[g])}
        for d in times:
            s, r = lt.at(g, d) if g in lt.groups and (known is None or d in known.get(g, set())) else (None, None)
            row[f"{prefix}_{d}"], row[f"at_risk_{d}"] = (np.nan if s is None else s), (np.nan if r is None else r)
        row["median_days"] = (lt.median(g) if g in lt.groups else None) or np.nan
        rows.append(row)
    values = pd.DataFrame(rows, index=pd.Index(order, name="group"), columns=cols)
    hidden = values.index.isin(lt.hidden)
    primary = pd.DataFrame(False, index=values.index, columns=cols)
    complementary, derived = primary.copy(), primary.copy()
    small = values.n.between(1, t - 1)
    primary.loc[hidden & small, "n"] = True
    complementary.loc[hidden & ~small, "n"] = True
    derived.loc[hidden, cols[1:]] = True
    values = values.mask(primary | complementary | derived)
    return privacy.Protected(values=values, primary=primary, complementary=complementary, derived=derived,
                             threshold=t, counts=("n", *(f"at_risk_{d}" for d in times)))
