"""CREATE TABLE text for the import tables, from their declaration (analytics.store.schema).

Apart from `connection` and `migrations` so that migrations need not import the
connection module (which runs the migrations when a store opens): no import cycle.
"""

from __future__ import annotations

from analytics.store.schema import EARLIEST_DATE, Table

__all__ = ["table_ddl"]


def table_ddl(table: Table, *, primary_key: bool) -> str:
    """CREATE TABLE for an import table, with CHECKs that mirror the import rules."""
    lines = []
    for col in table.columns:
        parts = [col.name, col.type]
        if col.required:
            parts.append("NOT NULL")
        checks = []
        if col.allowed:
            checks.append(f"{col.name} IN ({', '.join(repr(v) for v in col.allowed)})")
        if col.low is not None:
            checks.append(f"{col.name} >= {col.low}")
        if col.high is not None:
            checks.append(f"{col.name} <= {col.high}")
        if col.type == "DATE":
            checks.append(f"{col.name} >= DATE '{EARLIEST_DATE}'")
        if checks:
            parts.append(f"CHECK ({' AND '.join(checks)})")
        lines.append("    " + " ".join(parts))
    if table.name == "participants":
        lines.append("    CHECK ((exited_on IS NULL) = (exit_reason IS NULL))")
        lines.append("    CHECK (exited_on IS NULL OR exited_on >= enrolled_on)")
    lines += [f"    CHECK ({check})" for check in table.checks]
    if primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.key)})")
    return f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n)"
