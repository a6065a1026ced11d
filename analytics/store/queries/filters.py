"""Which participants a query covers (the participant `Filters`), as SQL with bound
parameters, and the values the sidebar offers to choose from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from analytics.store.connection import Store
from analytics.store.schema import PARTICIPANTS, TABLES

__all__ = ["ParticipantFilter", "check_columns", "filter_choices", "in_sites", "participant_where"]

_PARTICIPANT_COLUMNS = frozenset(c.name for c in PARTICIPANTS.columns)
_SCOPED_TABLES = frozenset(TABLES)


class ParticipantFilter(Protocol):
    """What the queries read of analytics.outcomes.filters.Filters (a protocol, so the
    store does not import the layer above it). Empty / None means no restriction."""

    @property
    def programs(self) -> tuple[str, ...]: ...

    @property
    def sites(self) -> tuple[str, ...]: ...

    @property
    def enrolled_from(self) -> dt.date | None: ...

    @property
    def enrolled_to(self) -> dt.date | None: ...

    def scoped_sites(self) -> tuple[str, ...]:
        """`sites` narrowed to the signed-in user's sites (what the condition uses)."""


def participant_where(filters: ParticipantFilter, alias: str = "p") -> tuple[str, dict]:
    """A SQL condition on participants (aliased `alias`) and its named parameters; the sites
    are the filter's scoped_sites(), so a site-scoped account never sees another site."""
    if not alias.isidentifier():
        raise ValueError(f"not a table alias: {alias!r}")
    sql = (f"(len($programs::VARCHAR[]) = 0 OR list_contains($programs::VARCHAR[], {alias}.program))"
           f" AND (len($sites::VARCHAR[]) = 0 OR list_contains($sites::VARCHAR[], {alias}.site))"
           f" AND ($enrolled_from::DATE IS NULL OR {alias}.enrolled_on >= $enrolled_from::DATE)"
           f" AND ($enrolled_to::DATE IS NULL OR {alias}.enrolled_on <= $enrolled_to::DATE)")
    return sql, {"programs": list(filters.programs), "sites": list(filters.scoped_sites()),
                 "enrolled_from": filters.enrolled_from, "enrolled_to": filters.enrolled_to}


def check_columns(names: tuple[str, ...] | list[str], extra: frozenset[str] = frozenset()) -> None:
    """Refuse a name that is not a participants column (or one of `extra`): column names
    are written into SQL text, so only declared ones may be."""
    unknown = [n for n in names if n not in _PARTICIPANT_COLUMNS | extra]
    if unknown:
        raise ValueError(f"not a participants column: {', '.join(map(repr, unknown))}")


def in_sites(table: str, sites: Sequence[str]) -> tuple[str, dict]:
    """`table` (an import table) as a FROM item holding only the rows of participants at `sites`
    (every row when `sites` is empty), and its parameters: for the store-wide figures that take
    no Filters (dates, counts, the sidebar's choices), so a site-scoped account sees its own."""
    if table not in _SCOPED_TABLES:
        raise ValueError(f"not an import table: {table!r}")
    if not sites:
        return table, {}
    at_sites = "SELECT participant_id FROM participants WHERE list_contains($scope::VARCHAR[], site)"
    return f"(SELECT * FROM {table} WHERE participant_id IN ({at_sites})) AS {table}", {"scope": list(sites)}


def filter_choices(store: Store, sites: Sequence[str] = ()) -> tuple[list[str], list[str], dt.date | None]:
    """The programs and sites of the participants at `sites` (empty: all; sorted) and the first
    enrollment day."""
    people, params = in_sites("participants", sites)
    params = params or None
    programs = [r[0] for r in store.rows(f"SELECT DISTINCT program FROM {people} ORDER BY 1", params)]
    found = [r[0] for r in store.rows(f"SELECT DISTINCT site FROM {people} WHERE site IS NOT NULL ORDER BY 1",
                                      params)]
    return programs, found, store.scalar(f"SELECT min(enrolled_on) FROM {people}", params)
