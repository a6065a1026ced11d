"""One shape for every reported estimate, and the one rule for a reference level.

Every model here (Cox on categories, the time-varying Cox, landmark Cox and logistic
models, GEE) reports Estimate rows: the term, the estimate on its reporting scale
(hazard ratio, odds ratio or difference), its 95% CI and p. A categorical term also
names its level and the reference level it is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Estimate", "MISSING_LEVEL", "reference_level"]

MISSING_LEVEL = "(not recorded)"  # the level of a descriptor that was left empty


@dataclass(frozen=True)
class Estimate:
    """term, estimate (measure: "hr", "or" or "diff"), ci, p; per `unit`; for a categorical
    term, `level` against `reference`."""

    term: str
    estimate: float
    ci: tuple[float, float]
    p: float
    measure: str = "hr"
    unit: str = ""
    level: str | None = None
    reference: str | None = None

    def to_json(self) -> dict:
        """{term, <measure>: estimate, ci, p, measure, unit}."""
        return {"term": self.term, self.measure: self.estimate, "ci": list(self.ci), "p": self.p,
                "measure": self.measure, "unit": self.unit}

    def level_json(self) -> dict:
        """A categorical term: {term, level, reference, <measure>: estimate, ci, p}."""
        return {"term": self.term, "level": self.level, "reference": self.reference,
                self.measure: self.estimate, "ci": [self.ci[0], self.ci[1]], "p": self.p}


def reference_level(counts: Mapping[str, float]) -> str:
    """The most frequent recorded level, ties broken alphabetically: a stable, well-populated
    baseline. MISSING_LEVEL is a poor baseline, so it is the reference only when alone.
    `counts`: rows (or weight) per level; levels with no rows are ignored."""
    present = {str(k): v for k, v in counts.items() if v > 0}
    recorded = {k: v for k, v in present.items() if k != MISSING_LEVEL} or present
    if not recorded:
        raise ValueError("no levels to choose a reference from")
    top = max(recorded.values())
    return min(k for k, v in recorded.items() if v == top)
