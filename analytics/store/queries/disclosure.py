"""SQL of disclosure control: the store's cell-key secret (analytics.publish.cellkey).

The secret lives in the store itself (table ``disclosure_meta``, schema step 8), so every output of
one store gets the same noise for the same cell, and another store's keys differ. On the server
store the table is live (analytics.store.server.LIVE_TABLES): the secret is PostgreSQL's, the same
for every process, never the mirror's.
"""

from __future__ import annotations

from analytics.store.connection import Store, StoreError

__all__ = ["MODULUS", "cell_key_secret", "cell_key_sql", "key_columns", "record_key_sql", "secret_params"]

MODULUS = 2 ** 64  # cell keys are sums of 64-bit record keys mod 2^64 (analytics.publish.cellkey)
_GET = "SELECT value FROM disclosure_meta WHERE name = $name"


def cell_key_secret(store: Store) -> bytes:
    """The store's 32-byte secret for record keys (made by the schema step that made the table)."""
    value = store.scalar(_GET, {"name": "cell_key_secret"})
    if value is None:
        raise StoreError(f"{store.path} has no cell-key secret (table disclosure_meta): it was altered by hand")
    return bytes.fromhex(value)


def record_key_sql(column: str) -> str:
    """SQL for the record key of the participant id in ``column`` (analytics.publish.cellkey.record_key),
    as HUGEINT so that sums of keys do not overflow; the secret is the bound parameter $cell_secret."""
    if not column.replace(".", "_").isidentifier():
        raise ValueError(f"not a column: {column!r}")
    return f"('0x' || sha256($cell_secret || {column})[1:16])::UBIGINT::HUGEINT"


def cell_key_sql(column: str, distinct: bool = False, when: str | None = None) -> str:
    """SQL aggregate: the cell key (sum of the members' record keys mod 2^64) beside a count of
    ``column``; ``distinct`` where a participant can be on several rows of the cell, ``when`` (SQL
    from code) for a count with a FILTER."""
    key = record_key_sql(column) if when is None else f"CASE WHEN {when} THEN {record_key_sql(column)} END"
    return f"(coalesce(sum({'DISTINCT ' if distinct else ''}{key}), 0) % {MODULUS})::UBIGINT"


def key_columns(keyed: bool, **columns: str) -> str:
    """``, <sql> AS <name>`` for each column when ``keyed`` (else nothing): the cell keys a query
    returns beside its counts only for what is published."""
    return "".join(f", {sql} AS {name}" for name, sql in columns.items()) if keyed else ""


def secret_params(store: Store) -> dict:
    """The bound parameter the SQL of record_key_sql needs."""
    return {"cell_secret": cell_key_secret(store).hex()}
