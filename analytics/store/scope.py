"""The sites the code running now may read: the acting user's, for the server store's
row-level security.

Why here and not only in analytics.access.roles: the server store picks the DuckDB mirror a
read runs on by this scope (a mirror loaded from PostgreSQL under the user's sites, so other
sites' rows are not in it at all), and the store layer may not import the access layer.
analytics.access.roles sets it whenever it sets the acting user. Empty: every site.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["current_sites", "reading_sites", "set_sites"]

_sites: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("outcomes_read_sites", default=())


def _key(sites: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(sorted(set(sites or ())))


def current_sites() -> tuple[str, ...]:
    """The sites reads are limited to now (sorted, no repeats); () for every site."""
    return _sites.get()


def set_sites(sites: Iterable[str] | None) -> None:
    """Limit this thread's (context's) reads to `sites` from now on; empty/None: every site."""
    _sites.set(_key(sites))


@contextmanager
def reading_sites(sites: Iterable[str] | None) -> Iterator[None]:
    """Run the block with reads limited to `sites`."""
    token = _sites.set(_key(sites))
    try:
        yield
    finally:
        _sites.reset(token)
