"""The names of the outcomes and of the columns an analysis can group by.

Kept apart from definitions.py (which needs pandas and the store) so that the CLI can
offer them as choices without importing either.
"""

from __future__ import annotations

from analytics.stats.result import MISSING_LEVEL  # noqa: F401  (the level of an empty descriptor)

OUTCOMES = ("sobriety", "retention")
DEFAULT_OUTCOME = "retention"  # what `survival` and `engagement` analyse without --outcome
DESCRIPTORS = ("program", "site", "age_band", "gender", "primary_substance", "referral_source")
COHORTS = ("cohort_month", "cohort_quarter", "cohort_year")
GROUP_COLUMNS = DESCRIPTORS + COHORTS
