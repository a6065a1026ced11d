"""Rows grouped by their values: the distinct patterns of a person-period table and their
counts. A model fitted on one row per pattern, weighted by its count (replication weights),
is the same fit as on every row and far faster (engagement models, outreach model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["distinct_patterns"]


def distinct_patterns(columns: Sequence[np.ndarray], inverse: bool = False):
    """Rows grouped by their values in `columns` (non-negative integers): one row index per
    group (its representative), each group's count and, with `inverse`, each row's group.
    Works on a combined integer key, renumbered densely (no sort) whenever it grows past a
    few times the number of rows."""
    n = len(columns[0])
    key, size = np.zeros(n, np.int64), 1
    for col in columns:
        hi = int(col.max()) + 1 if n else 1
        if size * hi > 4 * n + 2**16:
            key, size = _renumber(key, size)
        key = key * hi + col
        size *= hi
    if size > 4 * n + 2**16:
        key, size = _renumber(key, size)
    counts = np.bincount(key, minlength=size)
    groups = np.flatnonzero(counts)
    rep = np.empty(size, np.int64)
    rep[key] = np.arange(n)  # any row of a group stands for it
    out = (rep[groups], counts[groups])
    if inverse:
        out += ((np.cumsum(counts > 0) - 1)[key],)
    return out


def _renumber(key: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Keys 0..size-1 renumbered 0..distinct-1, in the same order."""
    if size <= 8 * len(key) + 2**20:
        present = np.bincount(key, minlength=size) > 0
        return (np.cumsum(present) - 1)[key], int(present.sum())
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.ravel(), len(uniq)
