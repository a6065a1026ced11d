"""Consistent perturbation of published counts: the cell key method (Australian Bureau of
Statistics, TableBuilder; Fraser and Wooton 2005; Thompson, Broadfoot and Elazar 2013).

Why: suppression is decided within one output, but a grant writer can ask for the same count
with other filters (new enrollments by program, then by site) and subtract one from another.
With the cell key method every participant has a fixed random *record key*; a cell's *key* is
the sum of its members' record keys mod 2^64, and the key picks the cell's noise from a fixed
table. The same people always get the same noise, in any output and any request, so asking
again does not average the noise away, and a difference of two published counts is the true
difference plus the difference of two noises (-4 to +4 here), not the hidden count.

- record key: the first 64 bits of SHA-256 over the store's secret (hex) followed by the participant
  id (so nobody without the store can compute it); the same expression runs in SQL
  (analytics.store.queries.disclosure), so cell keys are summed next to the counts in DuckDB;
- noise: NOISE[cell key mod len(NOISE)], -2 to +2, each equally likely; an empty cell stays 0 and
  a perturbed count never drops below 1 (a non-empty cell is never published as empty);
- counts are perturbed first and suppressed afterwards (counts of 1 to threshold - 1 after
  noise are shown as "<11").

Effect on accuracy: each count is off by at most 2 (mean 0, standard deviation 1.4); a rate
over n people moves by at most 2/n (0.5 percentage points at n = 400, 5 at n = 40). Survival
values, incidences, medians and shares are computed from the perturbed counts (never from the
true ones beside them, which would give those back): each interval's factor moves by about
2/(number at risk).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from analytics.store.queries.disclosure import MODULUS

__all__ = ["MAX_NOISE", "MODULUS", "NOISE", "METHOD", "cell_key", "noisy", "perturb", "perturb_columns", "published",
           "record_key", "record_keys"]

NOISE = (-2, -1, 0, 1, 2)
MAX_NOISE = max(abs(n) for n in NOISE)  # a published count c is a true count in [c - 2, c + 2]
METHOD = ("Counts of people are perturbed by the cell key method of the Australian Bureau of Statistics "
          "(TableBuilder; Fraser and Wooton 2005): each participant has a fixed random key, a cell's key is the "
          "sum of its members' keys, and the key picks a noise of -2 to +2 (equally likely; an empty cell stays "
          "0, a non-empty one at least 1). The same people always get the same noise, in every output and every "
          "request, so a count cannot be averaged out by asking again, and the difference of two outputs made "
          "with other filters (a program minus one of its sites) is the true difference plus a noise of -4 to "
          "+4, not a hidden count. Counts are perturbed first and then suppressed below {t}. Perturbed: new "
          "enrollments, active, mentored and checked-in participants (per program, the total and per week) and "
          "every n and number at risk, drop-out or event (of each kind of exit) and censoring count of the life "
          "tables; in the chart downloads, also the participants and events of the Cox and engagement models "
          "(per level, landmark tier and in all) and the people per cohort and month of the cohort trends; in "
          "the recovery capital sections, the people with a baseline, the follow-ups due, done and missed "
          "(counts of follow-ups: a person with two due adds her key twice; missed perturbed on its own) and the "
          "people with both assessments and at or above 47 before and after, of which the follow-up rate and the "
          "shares are computed (at most 100%), means, CIs and p values rounded as printed. Survival, cumulative incidence, medians and cohort retention shares are computed from the "
          "perturbed counts (each interval's factor kept within 0 and 1), as statistical agencies compute "
          "proportions from perturbed counts: a value computed from the true counts would give them back (a "
          "survival of 92.6% beside a published n of 28 is 25 of 27). Not perturbed: counts of meetings, "
          "check-ins and sessions and person-weeks (not of people). Effect on accuracy: each count is off by at most 2 (mean 0, "
          "standard deviation 1.4), a total is perturbed on its own (parts may not add up to it exactly), a "
          "rate published beside a perturbed count (meetings per active participant) is computed from the "
          "published count: off by at most 2/n of its value (0.5% at n = 400, 5% at n = 40); a survival moves "
          "by at most about 2/(number at risk) per interval (up to 5/(number at risk) in an interval where "
          "most of those at risk leave), these moves adding up over the intervals before it.")


def record_key(secret: bytes, participant_id: str) -> int:
    """The participant's fixed 64-bit key: SHA-256 of the secret (hex) and the id, first 8 bytes
    (what analytics.store.queries.disclosure.record_key_sql computes in DuckDB)."""
    digest = hashlib.sha256((secret.hex() + participant_id).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def record_keys(secret: bytes, participant_ids: Iterable[str]) -> np.ndarray:
    """The record keys of participants already in memory (durations for life tables), as uint64."""
    return np.array([record_key(secret, p) for p in participant_ids], dtype=np.uint64)


def cell_key(secret: bytes, participant_ids: Iterable[str]) -> int:
    """The sum of the members' record keys mod 2^64: the same members, the same key."""
    return sum(record_key(secret, p) for p in participant_ids) % MODULUS


def noisy(count: int, key: int) -> int:
    """The published count of a cell of ``count`` people whose cell key is ``key``: 0 stays 0, a
    non-empty cell stays at least 1."""
    count, key = int(count), int(key)
    return 0 if count == 0 else max(1, count + NOISE[key % MODULUS % len(NOISE)])


def published(keys: np.ndarray) -> int:
    """The published count of the members whose record keys are ``keys`` (one per member, or per
    row counted): their number plus the noise their cell key picks (a uint64 sum wraps mod 2^64)."""
    keys = np.asarray(keys, dtype=np.uint64)
    return noisy(len(keys), int(keys.sum(dtype=np.uint64)))


def perturb(secret: bytes, participant_ids: Iterable[str]) -> int:
    """The cell's published count: its true count plus the noise its key picks; 0 stays 0 and a
    non-empty cell stays at least 1."""
    ids = list(dict.fromkeys(participant_ids))
    return noisy(len(ids), cell_key(secret, ids))


def perturb_columns(table: pd.DataFrame, columns: Sequence[str], total_row: Hashable | None = None) -> pd.DataFrame:
    """``table`` with each count column ``c`` replaced by its published count, from ``c`` and its cell
    key ``c_key`` (from the query, analytics.store.queries.disclosure), the key columns dropped.

    ``total_row``: a row holding the true sums of the other rows, whose members are the union of
    theirs (rows that partition the people, as programs do): its key is the sum of their keys, so the
    total gets the noise of everyone in it, the same as a request for them alone."""
    out = table.copy()
    for c in columns:
        keys = out[f"{c}_key"].astype(object)
        if total_row is not None and total_row in out.index:
            keys[total_row] = sum(int(k) for g, k in keys.items() if g != total_row) % MODULUS
        out[c] = [noisy(n, k) for n, k in zip(out[c], keys)]
    return out.drop(columns=[f"{c}_key" for c in columns])
