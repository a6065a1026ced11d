"""Import rules of assessments.csv (format 1.1) that the column declarations cannot say.

The importer runs these next to every column's own rules, over the batch joined to the
known participants (columns k_*), so each problem is reported with all the others and
nothing is written while any remain.
"""

from __future__ import annotations

from analytics.store.schema import BARC10_ITEMS

DAYS_BEFORE_ENROLLMENT = 30  # intake screening often comes before enrollment

_SUM = " + ".join(BARC10_ITEMS)
# A cell is blank when it is empty; a value that did not parse is reported as such, not here.
_BLANK = [f"({c} IS NULL AND _raw_{c} IS NULL)" for c in BARC10_ITEMS]
_ALL_BLANK = " AND ".join(_BLANK)
_SOME_BLANK = " OR ".join(_BLANK)
_ALL_GIVEN = " AND ".join(f"{c} IS NOT NULL" for c in BARC10_ITEMS)
_TOTAL_BLANK = "(total IS NULL AND _raw_total IS NULL)"


def row_rules() -> list[tuple[str | None, str, str, str | None]]:
    """(column, where, message, shown value) for each rule: rows where `where` holds are wrong."""
    return [
        ("assessed_on", f"assessed_on < k_enrolled_on - INTERVAL {DAYS_BEFORE_ENROLLMENT} DAY",
         f"assessment more than {DAYS_BEFORE_ENROLLMENT} days before the participant's enrollment",
         "CAST(assessed_on AS VARCHAR) || ' < enrolled_on ' || CAST(k_enrolled_on AS VARCHAR)"),
        ("total", f"{_ALL_BLANK} AND {_TOTAL_BLANK}",
         "give all ten items (item_1 ... item_10) or the total", None),
        ("item_1", f"NOT ({_ALL_BLANK}) AND ({_SOME_BLANK})",
         "some items are blank: give all ten items or none (the total alone is enough)",
         "concat_ws(',', " + ", ".join(f"coalesce(CAST({c} AS VARCHAR), _raw_{c}, '')" for c in BARC10_ITEMS) + ")"),
        ("total", f"{_ALL_GIVEN} AND total IS NOT NULL AND total <> {_SUM}",
         "total does not equal the sum of the ten items",
         f"CAST(total AS VARCHAR) || ' (items sum to ' || CAST({_SUM} AS VARCHAR) || ')'"),
    ]
