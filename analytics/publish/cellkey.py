"""Consistent perturbation of published counts: the cell key method (Australian Bureau of
Statistics, TableBuilder; Fraser and Wooton 2005; Thompson, Broadfoot and Elazar 2013).

Why: suppression is decided within one output, but a grant writer can ask for the same count
with other filters (new enrollments by program, then by site) and subtract one from another.
With the cell key method every participant has a fixed random *record key*; a cell's *key* is
the sum of its members' record keys mod 2^64, and the key picks the cell's noise from a fixed
table. The same people always get the same noise, in any output and any request, so asking
again does not average the noise away, and a difference of two published counts is the true
difference plus the difference of two noises (-4 to +4 here), not the hidden count.

- record key: keyed BLAKE2b of the participant id with the store's secret (so nobody without
  the store can compute it), 64 bits;
- noise: NOISE[cell key mod len(NOISE)], -2 to +2, each equally likely; an empty cell stays 0 and
  a perturbed count never drops below 1 (a non-empty cell is never published as empty);
- counts are perturbed first and suppressed afterwards (counts of 1 to threshold - 1 after
  noise are shown as "<11").

Effect on accuracy: each count is off by at most 2 (mean 0, standard deviation 1.4); a rate
over n people moves by at most 2/n (0.5 percentage points at n = 400, 5 at n = 40).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["MODULUS", "NOISE", "METHOD", "cell_key", "perturb", "record_key"]

MODULUS = 2 ** 64
NOISE = (-2, -1, 0, 1, 2)
METHOD = ("Counts are perturbed by the cell key method (Australian Bureau of Statistics): each participant has "
          "a fixed random key, a cell's key is the sum of its members' keys, and the key picks a noise of -2 to "
          "+2, so the same people always get the same noise and comparing outputs with other filters yields "
          "only noise. Counts are then suppressed below {t}. Each count is off by at most 2 (mean 0); a rate "
          "over n people by at most 2/n.")


def record_key(secret: bytes, participant_id: str) -> int:
    """The participant's fixed 64-bit key: keyed BLAKE2b (the store's secret) of the id."""
    digest = hashlib.blake2b(participant_id.encode(), key=secret, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def cell_key(secret: bytes, participant_ids: Iterable[str]) -> int:
    """The sum of the members' record keys mod 2^64: the same members, the same key."""
    return sum(record_key(secret, p) for p in participant_ids) % MODULUS


def perturb(secret: bytes, participant_ids: Iterable[str]) -> int:
    """The cell's published count: its true count plus the noise its key picks; 0 stays 0 and a
    non-empty cell stays at least 1."""
    ids = list(dict.fromkeys(participant_ids))
    if not ids:
        return 0
    return max(1, len(ids) + NOISE[cell_key(secret, ids) % len(NOISE)])
