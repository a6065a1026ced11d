"""Protected survival: a life table whose every published count is 0 or at least the threshold.

Why: a Kaplan-Meier curve published step by step shows each event (a fall from 92.9% to
85.7% is one person), and a numbers-at-risk row beside a table lets a reader subtract one
group from the total. Statistical agencies publish survival as a *life table*: counts per
fixed interval, survival by the actuarial (Cutler-Ederer) method. Here the intervals are
merged until every published cell holds no one or at least ``threshold`` people, so every
number of a survival section (curve points, numbers at risk, the table, medians, the
90-day value repeated in "Outcomes by program") is a function of protected counts only.

Each group on its own grid, with complementary protection between groups:

- Groups of fewer than ``threshold`` people are not shown. The hidden groups together (All
  minus the groups shown) hold 0 or at least ``threshold`` people, and two or more "<11" groups
  hide with one of at least ``threshold`` (else the smallest shown group is hidden as well).
- All participants' grid: day 0, then each candidate day ``b`` at which the events and the
  censorings since the last day are each 0 or at least ``threshold`` and at least ``threshold``
  remain at risk (else the interval is merged with the next).
- Each shown group, largest first, keeps those of All's days at which its own cell is so
  publishable, and only while, for every two of All's days, the groups that do not publish
  both (hidden ones included) hold together 0 or at least ``threshold`` people at risk,
  events and censorings: what "All minus the groups shown" reveals is a protected cell too.
  The auditor of the tests (linear programming over every relation) checks the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.publish import cellkey, lp_audit, privacy
from analytics.stats import survival

__all__ = ["ALL", "INCIDENCE_METHOD", "LifeTable", "METHOD", "incidence_table", "life_table", "protected_table"]

ALL = "All"
METHOD = ("Survival is published as an actuarial life table (Cutler-Ederer): counts per interval, survival "
          "at each interval's end = the product of (1 - events / (at risk - censored / 2)). Each group has its "
          "own intervals, starting from fixed days and merged until the group's events, censorings and "
          "numbers at risk are each 0 or at least {t}; a curve stops where fewer than {t} remain at risk. "
          "Differencing between groups is prevented as in cell suppression with complementary cells (Hundepool "
          "et al., Statistical Disclosure Control, 2012, ch. 4): for any two days published for all "
          "participants, the participants of the groups that do not publish both days (and of the groups "
          "not shown) together hold 0 or at least {t} events, censorings and people at risk. Medians are "
          "interpolated within the interval where the survival crosses 50%. Against Kaplan-Meier this moves "
          "survival at the published days by at most about half the censored share of an interval. Where the "
          "counts are perturbed (cell key method), the survival and the medians are computed from the "
          "perturbed counts, each interval's factor kept within 0 and 1: about 2/(number at risk) further "
          "per interval.")
INCIDENCE_METHOD = (
    "Cumulative incidence of each kind of exit is published from a life table whose events are split by "
    "kind: intervals are merged until the events of each kind, the censorings and the numbers at risk are "
    "each 0 or at least {t} (with the same complementary protection between groups), and the incidence is "
    "computed at the published days only by the actuarial Aalen-Johansen estimator: the sum over intervals "
    "of survival at the interval's start x exits of that kind / (at risk - censored / 2). Where the counts are "
    "perturbed (cell key method, every kind's exits too), the incidence is computed from the perturbed counts.")


@dataclass(frozen=True)
class LifeTable:
    """Counts per group, each group on its own grid of published days. ``points``: the days
    published for all participants (every group's grid is a subset). Per group: ``grids[g]`` its
    published days (0 first), ``at_risk[g][k]`` at ``grids[g][k]``, ``events[g][k]`` and
    ``censored[g][k]`` in ``[grids[g][k], grids[g][k+1])``."""

    points: tuple[int, ...]
    groups: tuple[str, ...]            # shown, All last when there are several groups
    hidden: tuple[str, ...]            # groups not shown (fewer than threshold, or complements)
    n: dict[str, int]
    grids: dict[str, tuple[int, ...]]
    at_risk: dict[str, list[int]]
    events: dict[str, list[int]]
    censored: dict[str, list[int]]
    threshold: int
    noise: int = 0                     # counts perturbed by up to this (cell key method); 0: exact
    kinds: tuple[str, ...] = ()        # events split by kind of exit (cumulative incidence); () : not split
    kind_events: dict[str, dict[str, list[int]]] = dataclasses.field(default_factory=dict)
    # kind -> group -> events of that kind in each of the group's intervals (each 0 or at least threshold)

    def grid(self, group: str) -> list[int]:
        """The group's published days (0 first)."""
        return list(self.grids[group])

    def survival(self, group: str) -> list[float]:
        """Actuarial survival at each published day of ``group`` (1.0 at day 0), of the published
        counts only (perturbed ones too, each factor clamped to [0, 1]): a survival of the true
        counts beside perturbed ones would give the true counts back (25/27 beside n = 28)."""
        return survival.actuarial(self.at_risk[group], self.events[group], self.censored[group])

    def incidence(self, group: str) -> dict[str, list[float]]:
        """Per kind, the actuarial Aalen-Johansen cumulative incidence at each published day of
        ``group`` (0 at day 0): the sum of S(start) x exits of the kind / (at risk - censored / 2),
        of the published counts (each share clamped to [0, 1])."""
        surv = self.survival(group)
        out = {}
        for kind in self.kinds:
            cif, values = 0.0, [0.0]
            for k, (r, c, d) in enumerate(zip(self.at_risk[group], self.censored[group],
                                              self.kind_events[kind][group])):
                cif += surv[k] * (1 - survival.actuarial_factor(r, d, c))
                values.append(cif)
            out[kind] = values
        return out

    def at(self, group: str, day: int) -> tuple[float | None, int | None]:
        """(survival, at risk) at ``day`` when it is a published day of the group, else (None, None)."""
        if group not in self.grids or day not in self.grids[group]:
            return None, None
        k = self.grids[group].index(day)
        return self.survival(group)[k], self.at_risk[group][k]

    def median(self, group: str) -> float | None:
        """Day the survival crosses 50%, linear within its interval; None when not reached."""
        s, days = self.survival(group), self.grids[group]
        for k in range(1, len(s)):
            if s[k] <= 0.5:
                a, b = days[k - 1], days[k]
                return a + (b - a) * (s[k - 1] - 0.5) / (s[k - 1] - s[k]) if s[k - 1] > s[k] else float(a)
        return None

    def rows(self) -> pd.DataFrame:
        """One row per group and published day: group, time, at_risk, events, censored (in the
        interval from that day on; blank at the last day) and survival."""
        out = []
        for g in self.groups:
            surv, days = self.survival(g), self.grids[g]
            for k, day in enumerate(days):
                inside = k < len(days) - 1
                out.append({"group": g, "time": day, "at_risk": self.at_risk[g][k],
                            "events": self.events[g][k] if inside else np.nan,
                            "censored": self.censored[g][k] if inside else np.nan, "survival": surv[k]})
        return pd.DataFrame(out, columns=["group", "time", "at_risk", "events", "censored", "survival"])

    def method(self) -> str:
        return (INCIDENCE_METHOD if self.kinds else METHOD).format(t=self.threshold)


@dataclass(frozen=True)
class _Members:
    """The participants behind a life table: days, event and, when the counts are perturbed
    (analytics.publish.cellkey), each one's record key (uint64; a sum wraps mod 2^64)."""

    days: np.ndarray
    event: np.ndarray
    keys: np.ndarray | None = None
    kind: np.ndarray | None = None     # each event's kind of exit (events split by kind); None: not split
    kinds: tuple[str, ...] = ()

    def count(self, mask: np.ndarray) -> int:
        """The people in ``mask`` as published: perturbed when keys are given."""
        n = int(mask.sum())
        return n if self.keys is None else cellkey.published(self.keys[mask])


def _ok(count: int, t: int) -> bool:
    return count == 0 or count >= t


def _cell(m: _Members, mask: np.ndarray, a: int, b: int) -> tuple[int, ...]:
    """(at risk at a, events in [a, b), censored in [a, b), at risk at b, then the events of each
    kind when they are split) of the participants in ``mask``, each as published."""
    inside = mask & (m.days >= a) & (m.days < b)
    return (m.count(mask & (m.days >= a)), m.count(inside & m.event), m.count(inside & ~m.event),
            m.count(mask & (m.days >= b)), *_kind_counts(m, inside & m.event))


def _kind_counts(m: _Members, events: np.ndarray) -> tuple[int, ...]:
    """The events in ``events`` of each kind: the split-by-kind rule (each must be publishable too)."""
    return tuple(m.count(events & (m.kind == k)) for k in m.kinds) if m.kind is not None else ()


def _own_ok(m: _Members, mask: np.ndarray, a: int, b: int, t: int) -> bool:
    _, e, c, r, *kinds = _cell(m, mask, a, b)
    return _ok(e, t) and _ok(c, t) and r >= t and all(_ok(k, t) for k in kinds)


def life_table(days: np.ndarray, event: np.ndarray, group: Sequence[str] | np.ndarray, candidates: Iterable[int],
               threshold: int = privacy.DEFAULT_THRESHOLD, hide: Iterable[str] = (),
               keys: np.ndarray | None = None, kind: np.ndarray | None = None,
               kinds: Sequence[str] = ()) -> LifeTable:
    """The protected life table of the module docstring. ``hide``: groups hidden elsewhere in the
    same output (so that a group is hidden everywhere or nowhere). ``keys``: the participants'
    record keys (analytics.publish.cellkey): every count is then perturbed first, and the grid,
    the groups shown and the complements are decided on the perturbed counts. ``kind``/``kinds``:
    each event's kind of exit and the kinds: every cell's events of each kind must be publishable
    too (for the cumulative incidence of each kind)."""
    t = privacy.check_threshold(threshold)
    group = np.asarray(group, dtype=object)
    m = _Members(np.asarray(days), np.asarray(event, dtype=bool),
                 None if keys is None else np.asarray(keys, dtype=np.uint64),
                 None if kind is None else np.asarray(kind, dtype=object), tuple(kinds))
    names = sorted(set(group.tolist()))
    sizes = {g: m.count(group == g) for g in names}
    shown = _shown_groups(sizes, set(hide), t) if len(names) > 1 else names
    if len(names) > 1 and not shown:  # no group can be shown: All alone, the groups not listed
        names, sizes = [], {}
    sets = {g: group == g for g in names} | {ALL: np.ones(len(group), dtype=bool)}
    cands = sorted({int(c) for c in candidates if c > 0})
    points = _own_grid(m, sets[ALL], cands, t)
    if len(names) == 1:
        return _assemble(m, sets, names, names, sizes, {names[0]: points}, points, t)
    grids = {ALL: points, **{g: [0] for g in shown}}
    for g in sorted(shown, key=lambda g: (-sizes[g], g)):  # the largest groups choose first
        grids[g] = _group_grid(m, sets, names, grids, g, points, t)
        while len(grids[g]) > 1 and _leaks(_assemble(m, sets, names, shown, sizes, grids, points, t), names):
            grids[g] = grids[g][:-1]
    return _assemble(m, sets, names, shown, sizes, grids, points, t)


def _assemble(m: _Members, sets: dict[str, np.ndarray], names: list[str], shown: list[str], sizes: dict[str, int],
              grids: dict[str, list[int]], points: list[int], t: int) -> LifeTable:
    groups = tuple([*sorted(shown), ALL] if len(names) != 1 else names)
    counts = {g: [_cell(m, sets[g], a, b) for a, b in zip(grids[g], grids[g][1:])] for g in groups}
    kind_events = {kind: {g: [m.count(sets[g] & m.event & (m.kind == kind) & (m.days >= a) & (m.days < b))
                              for a, b in zip(grids[g], grids[g][1:])] for g in groups} for kind in m.kinds}
    return LifeTable(tuple(points), groups, tuple(g for g in names if g not in shown),
                     {**sizes, ALL: m.count(sets[ALL])}, {g: tuple(grids[g]) for g in groups},
                     {g: [m.count(sets[g]), *(c[3] for c in counts[g])] for g in groups},
                     {g: [c[1] for c in counts[g]] for g in groups}, {g: [c[2] for c in counts[g]] for g in groups}, t,
                     cellkey.MAX_NOISE if m.keys is not None else 0, m.kinds, kind_events)


def _leaks(lt: LifeTable, names: list[str]) -> bool:
    """Whether the attacker (analytics.publish.lp_audit) narrows a hidden count of ``lt``."""
    aud = lp_audit.Auditor(lt.threshold)
    lp_audit.add_life_table(aud, lt, names, "lt")
    return bool(aud.failures())


def _own_grid(m: _Members, mask: np.ndarray, cands: Iterable[int], t: int) -> list[int]:
    """Day 0, then each next candidate day where the cell since the last day is publishable."""
    grid = [0]
    for b in cands:
        if b > grid[-1] and _own_ok(m, mask, grid[-1], b, t):
            grid.append(b)
    return grid


def _group_grid(m: _Members, sets: dict[str, np.ndarray], names: list[str],
                grids: dict[str, list[int]], g: str, points: list[int], t: int) -> list[int]:
    """The group's own grid within All's days, a day kept only while no complement becomes small."""
    grid = [0]
    for b in points[1:]:
        if _own_ok(m, sets[g], grid[-1], b, t) and _complements_ok(
                m, sets, names, {**grids, g: [*grid, b]}, points, t):
            grid.append(b)
    return grid


def _complements_ok(m: _Members, sets: dict[str, np.ndarray], names: list[str],
                    grids: dict[str, list[int]], points: list[int], t: int) -> bool:
    """For every two of All's days a < b: the groups not publishing both (hidden ones included) hold
    0 or at least ``t`` at risk at a and at b, events and censorings in [a, b) together: else
    All minus the others would show them."""
    for i, a in enumerate(points):
        for b in points[i + 1:]:
            rest = [g for g in names if not (a in grids.get(g, ()) and b in grids.get(g, ()))]
            if not rest or len(rest) == len(names):
                continue
            mask = np.any([sets[g] for g in rest], axis=0)
            if not all(_ok(x, t) for x in _cell(m, mask, a, b)):
                return False
    return True


def _shown_groups(sizes: dict[str, int], hide: set[str], t: int) -> list[str]:
    """Groups of at least ``t`` not hidden elsewhere; complements hidden until the rest is safe."""
    shown = sorted((g for g, n in sizes.items() if n >= t and g not in hide), key=lambda g: (sizes[g], g))
    while shown and not _hidden_safe([n for g, n in sizes.items() if g not in shown], t):
        shown.pop(0)
    return sorted(shown)


def _hidden_safe(hidden: list[int], t: int) -> bool:
    """The hidden groups add up to All minus the shown ones. Their sum must be 0 or at least ``t``,
    and when two or more are marked "<t", one of at least ``t`` must hide with them: two "<11" rows
    adding up to 16 are each 6 to 10."""
    small = sum(1 for n in hidden if 0 < n < t)
    return _ok(sum(hidden), t) and (small < 2 or any(n >= t for n in hidden))


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
    complementary.loc[hidden & ~small, "n"] = True  # the rest of a hidden row is blank: never computed
    values = values.mask(primary | complementary | derived)
    counts = ("n", *(f"at_risk_{d}" for d in times))
    return privacy.Protected(values=values, primary=primary, complementary=complementary, derived=derived,
                             threshold=t, counts=counts, perturbed=counts if lt.noise else ())


def incidence_table(lt: LifeTable, times: Sequence[int], kinds: Sequence[str]) -> privacy.Protected:
    """The cumulative incidence of each of ``kinds`` at fixed ``times`` as a table: n, then per
    kind and time the incidence ("{kind}_{day}"). A time that is not a published day of a group is
    blank; a hidden group's row shows its n as "<11" or "*" and nothing else."""
    t = lt.threshold
    order = [g for g in lt.groups if g != ALL] + list(lt.hidden) + ([ALL] if ALL in lt.groups else [])
    cols = ["n", *(f"{k}_{d}" for k in kinds for d in times)]
    rows = []
    for g in order:
        row = {"n": float(lt.n[g])}
        cif = lt.incidence(g) if g in lt.groups else {}
        for k in kinds:
            for d in times:
                published = g in lt.groups and d in lt.grids[g] and k in cif
                row[f"{k}_{d}"] = cif[k][lt.grids[g].index(d)] if published else np.nan
        rows.append(row)
    values = pd.DataFrame(rows, index=pd.Index(order, name="group"), columns=cols)
    primary = pd.DataFrame(False, index=values.index, columns=cols)
    complementary = primary.copy()
    hidden, small = values.index.isin(lt.hidden), values.n.between(1, t - 1)
    primary.loc[hidden & small, "n"] = True
    complementary.loc[hidden & ~small, "n"] = True
    return privacy.Protected(values=values.mask(primary | complementary), primary=primary,
                             complementary=complementary, derived=primary.copy(), threshold=t, counts=("n",),
                             perturbed=("n",) if lt.noise else ())
