"""The attacker of official statistics (tau-ARGUS, sdcTable), as a test helper.

It takes everything one output publishes (each count as published, "<11", "*" or not shown),
the relations a reader knows among those counts (table totals, at risk = at risk before -
events - censored, the group rows adding up to All, rate x denominator = numerator, the
same cell printed in two places) and, for each count not published, solves two linear
programs (scipy.optimize.linprog) for the smallest and largest value it can take. A count
that may be small (1 to threshold - 1) must keep a range at least as wide as the "<11"
marker's own (1 to threshold - 1); a narrower range is a disclosure.

The solver and the life-table collector are the library's (analytics/publish/lp_audit.py, with
which the life tables prove their grids); the collectors of tables and cross-section relations
are here.
"""

from __future__ import annotations

import pandas as pd

from analytics.publish import cellkey
from analytics.publish.disclosure import ALL
from analytics.publish.lp_audit import Auditor, add_life_table  # noqa: F401 (re-exported for the tests)
from analytics.publish.privacy import Protected


# --- collectors: what one output publishes, and the relations among it -------------------

def add_table(aud: Auditor, p: Protected, prefix: str, *, total_row: str | None = ALL,
              rates: dict[str, tuple[str, str]] | None = None) -> None:
    """A protect()-ed table: each count a variable (published, "<11" -> 1..t-1, "*" -> 0 or more; a
    perturbed column's published c -> c-2..c+2 and "<11" -> 1..t+1),
    column totals over the total row, and rate x denominator = numerator where a rate is shown."""
    t = aud.threshold
    for col in p.counts:
        noise = cellkey.MAX_NOISE if col in p.perturbed else 0  # published c: the true count is c +/- 2
        for row in p.values.index:
            name = f"{prefix}:{col}:{row}"
            value = p.values.loc[row, col]
            if p.primary.loc[row, col]:
                aud.var(name, 1, t - 1 + noise)
            elif p.complementary.loc[row, col] or p.derived.loc[row, col] or pd.isna(value):
                aud.var(name)
            else:
                aud.publish(name, float(value), noise)
        if total_row is not None and total_row in p.values.index:
            parts = [r for r in p.values.index if r != total_row]
            aud.equal({**{f"{prefix}:{col}:{r}": 1 for r in parts}, f"{prefix}:{col}:{total_row}": -1})
    for rate, (num, den) in (rates or {}).items():
        for row in p.values.index:
            value = p.values.loc[row, rate]
            if pd.notna(value):
                aud.equal({f"{prefix}:{num}:{row}": 1, f"{prefix}:{den}:{row}": -float(value)})


# --- survival as a reader recomputes it from published counts ------------------------------

def actuarial_of(at_risk: list[int], events: list[int], censored: list[int]) -> list[float]:
    """Cutler-Ederer survival written out here: S *= 1 - e / (r - c/2), each factor clamped to [0, 1]."""
    s, out = 1.0, [1.0]
    for r, e, c in zip(at_risk, events, censored):
        s *= min(1.0, max(0.0, 1 - e / (r - c / 2))) if r - c / 2 > 0 else 1.0
        out.append(s)
    return out


def median_of(days: list[int], surv: list[float]) -> float | None:
    """The day the survival crosses 50%, linear within the interval (as the report states)."""
    for k in range(1, len(surv)):
        if surv[k] <= 0.5:
            return days[k - 1] + (days[k] - days[k - 1]) * (surv[k - 1] - 0.5) / (surv[k - 1] - surv[k])
    return None


def factor_noise(at_risk: int, events: int, censored: int) -> float:
    """How far the actuarial factor of published counts can be from that of the true ones, each true
    count within cellkey.MAX_NOISE of the published one (the worst case over that box; about
    2 / at risk per interval when few leave)."""
    moves = range(-cellkey.MAX_NOISE, cellkey.MAX_NOISE + 1)
    base = actuarial_of([at_risk], [events], [censored])[1]
    return max(abs(actuarial_of([at_risk + a], [max(0, events + b)], [max(0, censored + c)])[1] - base)
               for a in moves for b in moves for c in moves)


def survival_noise(lt, group: str, k: int) -> float:
    """A bound on |published survival - survival of the true counts| at the group's k-th published
    day: the factors each lie in [0, 1], so the product moves by at most the sum of their moves."""
    return sum(factor_noise(r, e, c) for r, e, c in
               list(zip(lt.at_risk[group], lt.events[group], lt.censored[group]))[:k])


def candidates(survival: float, n_published: int) -> set[tuple[int, int]]:
    """The attacker of the issue: every (n, e) with n within the noise of the published n and
    1 - e/n equal to the published survival (an interval with no censoring)."""
    return {(n, e) for n in range(n_published - cellkey.MAX_NOISE, n_published + cellkey.MAX_NOISE + 1)
            for e in range(n + 1) if abs(1 - e / n - survival) < 1e-12}
