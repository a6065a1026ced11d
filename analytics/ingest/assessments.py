"""Import rules of assessments.csv (format 1.1) that the column declarations cannot say.

The importer runs these next to every column's own rules (store/queries/ingest.py says how
DuckDB finds the rows that break each kind), so each problem is reported with all the others
and nothing is written while any remain. The window before enrollment is the table's
`days_before_enrollment` (store/schema.py).
"""

from __future__ import annotations

from analytics.store.schema import ASSESSMENTS

# (kind, column, message)
RULES: tuple[tuple[str, str, str], ...] = (
    ("before_enrollment", "assessed_on",
     f"assessment more than {ASSESSMENTS.days_before_enrollment} days before the participant's enrollment"),
    ("items_or_total", "total", "give all ten items (item_1 ... item_10) or the total"),
    ("items_partial", "item_1", "some items are blank: give all ten items or none (the total alone is enough)"),
    ("total_mismatch", "total", "total does not equal the sum of the ten items"),
)
