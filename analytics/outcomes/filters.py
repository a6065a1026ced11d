"""Which participants an analysis covers: program, site and enrollment window.

The same Filters value is used by the CLI, the pages and the notebooks, and it turns
into SQL with bound parameters only (never string-built values).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from analytics.access.roles import scoped_sites


@dataclass(frozen=True)
class Filters:
    """Empty tuples / None mean "no restriction"."""

    programs: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    enrolled_from: dt.date | None = None
    enrolled_to: dt.date | None = None

    def where(self, alias: str = "p") -> tuple[str, dict]:
        """A SQL condition on participants (aliased `alias`) and its named parameters, narrowed
        to the sites of the user acting (analytics.access.roles.scoped_sites): every data
        function builds its condition here, so a site-scoped account sees its sites only."""
        sites = scoped_sites(self.sites)
        if sites != self.sites:
            return replace(self, sites=sites).where(alias)
        sql = (f"(len($programs::VARCHAR[]) = 0 OR list_contains($programs::VARCHAR[], {alias}.program))"
               f" AND (len($sites::VARCHAR[]) = 0 OR list_contains($sites::VARCHAR[], {alias}.site))"
               f" AND ($enrolled_from::DATE IS NULL OR {alias}.enrolled_on >= $enrolled_from::DATE)"
               f" AND ($enrolled_to::DATE IS NULL OR {alias}.enrolled_on <= $enrolled_to::DATE)")
        return sql, {"programs": list(self.programs), "sites": list(self.sites),
                     "enrolled_from": self.enrolled_from, "enrolled_to": self.enrolled_to}

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
