"""Small-cell suppression: the one privacy layer every export goes through.

Anything that leaves the app (a table, a chart file, a report) must not show a count of
1 to ``threshold - 1`` people, nor a rate built on such a count, nor let a hidden count be
worked back out from the totals printed next to it (docs/privacy.md).

Primary suppression
    A count in 1..threshold-1 is hidden and shown as ``"<11"``. Zero is shown: "nobody"
    identifies no one, and hiding zeros would make tables unreadable.

Complementary suppression
    A table declares its linear relations: row sums (``sums``: parts + total in each row)
    and a total row (``total_row``: each count column is the sum of the other rows). A
    relation with exactly one hidden member gives that member away (total minus the
    shown parts), so until no relation has exactly one hidden member (a fixed point),
    one more member of each such relation is hidden, shown as ``"*"``:

    1. the smallest shown non-zero part (hiding small cells loses the least information);
    2. else the relation's total, if non-zero;
    3. else the smallest shown member (a zero), parts before the total.

    Ties go to the first in table order. Relations are visited row relations first
    (row by row), then column relations (column by column), so results are
    deterministic. Blank (NaN, "not applicable") cells are never chosen. Without
    declared relations (a table without totals) only primary suppression happens.

    The relations taken together: the relation-by-relation rules cannot see a row's two "<11"
    (each 1..10 by their known sum) of which the column of one caps it; so the linear programs
    of analytics.publish.lp_audit (the smallest and largest value each hidden count can take)
    run over all declared relations, and while a hidden count is narrowed below the "<11"
    marker's range, one more complement is hidden (rule 1-3 in its first relation).

Derived values
    A rate, percentage, mean, median or CI bound is hidden (``"*"``) in every row where a
    count it is built on is hidden: otherwise it would reveal that count.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from analytics.publish import cellkey, lp_audit
from analytics.settings import THRESHOLD

__all__ = [
    "COMPLEMENTARY",
    "DEFAULT_THRESHOLD",
    "Protected",
    "check_threshold",
    "method_statement",
    "protect",
    "small_marker",
    "truncate_at_risk",
]

DEFAULT_THRESHOLD: int = THRESHOLD.default
MIN_THRESHOLD = int(THRESHOLD.minimum or THRESHOLD.default)
COMPLEMENTARY = "*"

Cell = tuple[int, int]  # (row position, count-column position)


def small_marker(threshold: int = DEFAULT_THRESHOLD) -> str:
    """The marker shown instead of a small count: ``"<11"`` for threshold 11."""
    return f"<{threshold}"


def check_threshold(threshold: int) -> int:
    """Return ``threshold`` if it is a whole number >= 11; otherwise raise ValueError.

    Counts of 1-10 must never leave the app, so a lower threshold is refused.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Integral):
        # ValueError, not TypeError: callers catch one error for any bad threshold setting
        raise ValueError(f"suppression threshold must be a whole number, got {threshold!r}")  # noqa: TRY004
    if threshold < MIN_THRESHOLD:
        raise ValueError(f"suppression threshold must be at least {MIN_THRESHOLD} "
                         f"(counts of 1-{MIN_THRESHOLD - 1} are never shown), got {threshold}")
    return int(threshold)


PERTURBATION = ("Counts of people are first perturbed by the cell key method (Australian Bureau of "
                "Statistics): each is off by at most 2, and the same people always get the same change, so "
                "comparing outputs made with other filters reveals only noise; a total is perturbed on its "
                "own, so parts may not add up to it exactly; shares, rates, survival and medians are computed "
                "from the perturbed counts. ")


def method_statement(threshold: int = DEFAULT_THRESHOLD, perturbed: bool = False) -> str:
    """One plain-English paragraph describing the suppression, stated on every export; ``perturbed``:
    the output's counts of people are perturbed first (analytics.publish.cellkey), and it says so."""
    t = check_threshold(threshold)
    return (PERTURBATION * perturbed) + (
        f"Small numbers are suppressed to protect participants' privacy. Counts of 1 to {t - 1} "
        f"people are shown as \"{small_marker(t)}\"; zeros are shown. Where a total would let a "
        f"hidden count be worked out, another count in the same row or column is also hidden and "
        f"shown as \"{COMPLEMENTARY}\" (the smallest such count). Rates, percentages, means, "
        f"medians and confidence limits built on a hidden count are shown as \"{COMPLEMENTARY}\". "
        f"Survival curves and numbers-at-risk tables stop where fewer than {t} people remain at risk.")


@dataclass(frozen=True)
class Protected:
    """A table after suppression: values with hidden cells blanked, and why each was hidden."""

    values: pd.DataFrame
    primary: pd.DataFrame
    complementary: pd.DataFrame
    derived: pd.DataFrame
    threshold: int
    counts: tuple[Hashable, ...] = ()
    perturbed: tuple[Hashable, ...] = ()  # count columns perturbed by the cell key method before suppression

    @property
    def suppressed(self) -> pd.DataFrame:
        """Every hidden cell, whatever the reason."""
        return self.primary | self.complementary | self.derived

    def display(self) -> pd.DataFrame:
        """The table as it may be shown: ``"<11"`` for small counts, ``"*"`` for the others hidden.

        Count columns show whole numbers as ints (not 12.0), so CSV/XLSX cells read naturally.
        """
        out = self.values.astype(object)
        for col in self.counts:
            j = out.columns.get_loc(col)
            out.iloc[:, j] = [_as_int(v) for v in out.iloc[:, j]]
        out = out.mask(self.complementary | self.derived, COMPLEMENTARY)
        return out.mask(self.primary, small_marker(self.threshold))

    def method(self) -> str:
        """The method statement for this table's threshold."""
        return method_statement(self.threshold, bool(self.perturbed))


def protect(table: pd.DataFrame, *, counts: Sequence[Hashable],
            derived: Mapping[Hashable, Sequence[Hashable]] = MappingProxyType({}),
            sums: Sequence[tuple[Sequence[Hashable], Hashable]] = (),
            total_row: Hashable | None = None, threshold: int = DEFAULT_THRESHOLD,
            perturbed: Sequence[Hashable] = ()) -> Protected:
    """Suppress small counts, their complements and values derived from them (module docstring).

    ``counts``: columns of people counts. ``sums``: ``(parts, total)`` column relations that
    hold in every row (all must be count columns). ``total_row``: index label of the row that
    sums all other rows in every count column. ``derived``: derived column -> the count
    columns it is built on. ``perturbed``: count columns already perturbed by the cell key method
    (analytics.publish.cellkey), recorded for the method statement and the auditor. The input is
    never modified.
    """
    t = check_threshold(threshold)
    counts = list(counts)
    _validate(table, counts, derived, sums, total_row)
    cols = [table.columns.get_loc(c) for c in counts]
    vals = table.iloc[:, cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    primary = (vals > 0) & (vals < t)
    relations = _relations(table, counts, sums, total_row)
    noise = [cellkey.MAX_NOISE if c in set(perturbed) else 0 for c in counts]
    hidden = _combined(vals, primary, _complement(vals, primary, relations, t), relations, t, noise)
    masks = {"primary": _frame(table, counts, primary), "complementary": _frame(table, counts, hidden & ~primary)}
    masks["derived"] = _derived_mask(table, masks["primary"] | masks["complementary"], derived)
    values = _blank(table, [*counts, *derived], masks["primary"] | masks["complementary"] | masks["derived"])
    return Protected(values=values, threshold=t, counts=tuple(counts), perturbed=tuple(perturbed), **masks)


def truncate_at_risk(curve: pd.DataFrame, at_risk: str = "at_risk", *,
                     threshold: int = DEFAULT_THRESHOLD, by: str | None = None) -> pd.DataFrame:
    """Drop curve rows from the first one with fewer than ``threshold`` at risk onwards (per ``by`` group).

    Once few people remain at risk, each later step of a Kaplan-Meier curve (and its
    numbers-at-risk row) shows what happened to one or two identifiable people, so exports
    stop the curve there. Rows must be in time order within each group, as curves are.
    A missing at-risk count is treated as small (fail safe). The input is not modified.
    """
    t = check_threshold(threshold)
    small = ~(pd.to_numeric(curve[at_risk], errors="coerce") >= t)
    if by is None:
        reached = small.cummax()
    else:
        reached = small.groupby(curve[by], dropna=False, sort=False).cummax()
    return curve.loc[~reached.to_numpy()].copy()


# --- helpers ---------------------------------------------------------------------------


def _validate(table: pd.DataFrame, counts: list[Hashable], derived: Mapping[Hashable, Sequence[Hashable]],
              sums: Sequence[tuple[Sequence[Hashable], Hashable]], total_row: Hashable | None) -> None:
    """Refuse declarations that would silently protect the wrong cells."""
    if not table.columns.is_unique:
        raise ValueError("protect() needs unique column names")
    missing = [c for c in [*counts, *derived] if c not in table.columns]
    if missing:
        raise ValueError(f"columns not in the table: {missing}")
    for col, sources in derived.items():
        bad = [s for s in sources if s not in counts]
        if col in counts or bad:
            raise ValueError(f"derived column {col!r} must not be a count and must be built on count "
                             f"columns (not counts: {bad})")
    for parts, total in sums:
        bad = [c for c in [*parts, total] if c not in counts]
        if bad or not list(parts):
            raise ValueError(f"sums ({list(parts)!r} -> {total!r}) must relate count columns; not counts: {bad}")
    if total_row is not None and _position(table.index, total_row) is None:
        raise ValueError(f"total_row {total_row!r} must label exactly one row")


def _position(index: pd.Index, label: Hashable) -> int | None:
    """Row position of ``label``, or None when it is absent or not unique."""
    try:
        pos = index.get_loc(label)
    except KeyError:
        return None
    return int(pos) if isinstance(pos, (int, np.integer)) and not isinstance(pos, bool) else None


def _relations(table: pd.DataFrame, counts: list[Hashable],
               sums: Sequence[tuple[Sequence[Hashable], Hashable]], total_row: Hashable | None) -> list[list[Cell]]:
    """Every declared relation as cells, the total last: row relations first, then columns."""
    col = {c: j for j, c in enumerate(counts)}
    relations = [[(i, col[p]) for p in parts] + [(i, col[total])]
                 for i in range(len(table)) for parts, total in sums]
    if total_row is not None:
        tr = _position(table.index, total_row)
        others = [i for i in range(len(table)) if i != tr]
        relations += [[(i, j) for i in others] + [(tr, j)] for j in range(len(counts))]
    return relations


def _complement(vals: np.ndarray, primary: np.ndarray, relations: list[list[Cell]], t: int) -> np.ndarray:
    """Hide more cells until no relation gives a hidden part away (terminates: cells only get hidden)."""
    hidden = primary.copy()
    changed = True
    while changed:
        changed = False
        for rel in relations:
            if _exposed(vals, hidden, rel, t) and (pick := _pick(vals, hidden, rel)) is not None:
                hidden[pick] = True
                changed = True
    return hidden


def _exposed(vals: np.ndarray, hidden: np.ndarray, rel: list[Cell], t: int) -> bool:
    """One hidden member (total minus the rest gives it), hidden parts that, under a shown total, add
    up to 1..t-1 (their sum is then a small count that can be read), or only "<t" parts whose known
    sum narrows each below the marker's range."""
    n_hidden = sum(bool(hidden[c]) for c in rel)
    if n_hidden == 1:
        return True
    if n_hidden == 0 or hidden[rel[-1]]:
        return False
    parts = [vals[c] for c in rel[:-1] if hidden[c] and not np.isnan(vals[c])]
    rest = sum(parts)
    if 0 < rest < t:
        return True
    # only "<t" parts hidden: with their sum known, each lies in [rest - (k-1)(t-1), rest - (k-1)],
    # narrower than the marker's 1..t-1 unless the sum happens to allow it (two "<11" adding to 16: 6..10)
    k = len(parts)
    return k == n_hidden and all(0 < v < t for v in parts) and (rest - (k - 1) * (t - 1) > 1 or rest - (k - 1) < t - 1)


def _combined(vals: np.ndarray, primary: np.ndarray, hidden: np.ndarray, relations: list[list[Cell]],
              t: int, noise: Sequence[int] = ()) -> np.ndarray:
    """Hide more until no hidden count can be narrowed by the relations taken together (the linear
    programs of analytics.publish.lp_audit): a row's two "<11" adding up to 11 are each 1..10 alone,
    but 3..10 when the column of one of them caps it at 8. Each round hides the complement
    ``_pick`` chooses in the first relation of a narrowed cell that still shows a member."""
    while relations and hidden.any():
        narrowed = _narrowed(vals, primary, hidden, relations, t, noise)
        picks = [p for cell in narrowed for rel in relations if cell in rel
                 if (p := _pick(vals, hidden, rel)) is not None]
        if not picks:
            return hidden
        hidden[picks[0]] = True
        hidden = _complement(vals, hidden, relations, t)
    return hidden


def _narrowed(vals: np.ndarray, primary: np.ndarray, hidden: np.ndarray, relations: list[list[Cell]],
              t: int, noise: Sequence[int] = ()) -> list[Cell]:
    """Hidden cells whose range the published cells and the relations make narrower than "<t" allows.
    ``noise``: per count column, how far a perturbed count may be from the true one."""
    aud = lp_audit.Auditor(t)
    for rel in relations:
        for i, j in rel:
            off = noise[j] if noise else 0
            if primary[i, j]:
                aud.var(f"{i},{j}", 1, t - 1 + off)
            elif hidden[i, j] or np.isnan(vals[i, j]):
                aud.var(f"{i},{j}")
            else:
                aud.publish(f"{i},{j}", float(vals[i, j]), off)
        aud.equal({**{f"{i},{j}": 1 for i, j in rel[:-1]}, f"{rel[-1][0]},{rel[-1][1]}": -1})
    return [tuple(int(x) for x in f.split(":")[0].split(",")) for f in aud.failures()]


def _pick(vals: np.ndarray, hidden: np.ndarray, rel: list[Cell]) -> Cell | None:
    """The complement to hide: smallest non-zero part, else a non-zero total, else the smallest zero."""
    shown = [(k, c) for k, c in enumerate(rel) if not hidden[c] and not np.isnan(vals[c])]
    if not shown:
        return None
    last = len(rel) - 1
    return min(shown, key=lambda kc: (vals[kc[1]] == 0, kc[0] == last, vals[kc[1]], kc[0]))[1]


def _frame(table: pd.DataFrame, counts: list[Hashable], mask: np.ndarray) -> pd.DataFrame:
    """A bool frame shaped like ``table``: ``mask`` in the count columns, False elsewhere."""
    out = pd.DataFrame(False, index=table.index, columns=table.columns)
    for j, c in enumerate(counts):
        out.iloc[:, out.columns.get_loc(c)] = mask[:, j]
    return out


def _derived_mask(table: pd.DataFrame, hidden: pd.DataFrame,
                  derived: Mapping[Hashable, Sequence[Hashable]]) -> pd.DataFrame:
    """Hide a derived value in every row where one of its source counts is hidden."""
    out = pd.DataFrame(False, index=table.index, columns=table.columns)
    for col, sources in derived.items():
        out.iloc[:, out.columns.get_loc(col)] = hidden[list(sources)].any(axis=1).to_numpy()
    return out


def _blank(table: pd.DataFrame, columns: list[Hashable], hidden: pd.DataFrame) -> pd.DataFrame:
    """A copy with hidden cells set to NaN; numeric protected columns become float."""
    out = table.copy()
    for c in columns:
        col = out[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            col = col.astype("float64")
        out[c] = col.mask(hidden[c])
    return out


def _as_int(value: object) -> object:
    """12.0 -> 12 for display; anything else unchanged."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return value
