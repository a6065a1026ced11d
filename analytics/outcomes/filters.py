"""Which participants an analysis covers: program, site and enrollment window.

The same Filters value is used by the CLI, the pages and the notebooks; the store layer
(analytics.store.queries) turns it into SQL with bound parameters only (never
string-built values).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.access.roles import scoped_sites
from analytics.store.queries.filters import participant_where


@dataclass(frozen=True)
class Filters:
    """Empty tuples / None mean "no restriction"."""

    programs: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    enrolled_from: dt.date | None = None
    enrolled_to: dt.date | None = None

    def where(self, alias: str = "p") -> tuple[str, dict]:
        """A SQL condition on participants (aliased `alias`) and its named parameters; built
        in the store layer (analytics.store.queries.filters.participant_where)."""
        return participant_where(self, alias)

    def scoped_sites(self) -> tuple[str, ...]:
        """The sites a query covers: those asked for, narrowed to the sites of the user acting
        (analytics.access.roles.scoped_sites). participant_where reads this, not `sites`, so
        every query of every data function keeps a site-scoped account to its sites."""
        return scoped_sites(self.sites)

    def describe(self) -> str:
        """Plain words for titles and notes."""
        parts = []
        if self.programs:
            parts.append("program " + ", ".join(self.programs))
        if self.sites:
            parts.append("site " + ", ".join(self.sites))
        if self.enrolled_from or self.enrolled_to:
            parts.append(f"enrolled {self.enrolled_from or '...'} to {self.enrolled_to or '...'}")
        return "; ".join(parts) or "all participants"
