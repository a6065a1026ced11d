"""SQL of disclosure control: the store's cell-key secret (analytics.publish.cellkey).

The secret lives in the store itself (table ``disclosure_meta``, schema step 8), so every output of
one store gets the same noise for the same cell, and another store's keys differ. On the server
store the table is live (analytics.store.server.LIVE_TABLES): the secret is PostgreSQL's, the same
for every process, never the mirror's.
"""

from __future__ import annotations

import datetime as dt

from analytics.store.connection import Session, Store, StoreError

__all__ = ["KEY_EVENT", "MODULUS", "cell_key_secret", "cell_key_sql", "key_columns", "outputs_with_key",
           "record_key_sql", "secret_params", "set_cell_key_secret"]

MODULUS = 2 ** 64  # cell keys are sums of 64-bit record keys mod 2^64 (analytics.publish.cellkey)
_GET = "SELECT value FROM disclosure_meta WHERE name = $name"
KEY_EVENT = "disclosure_key"  # the audit action of a copied secret (analytics.cli.disclosure_key)
# Exports and reports logged since the store's secret was last set (made with the store, or copied in).
_OUTPUTS = """SELECT count(*), max(logged_at) FROM audit_log WHERE action IN ('export', 'report')
              AND seq > (SELECT coalesce(max(seq), 0) FROM audit_log WHERE action = $key_event)"""


def cell_key_secret(store: Store | Session) -> bytes:
    """The store's 32-byte secret for record keys (made by the schema step that made the table)."""
    value = store.scalar(_GET, {"name": "cell_key_secret"})
    if value is None:
        raise StoreError(f"{getattr(store, 'path', 'the store')} has no cell-key secret (table disclosure_meta): it was altered by hand")
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


def set_cell_key_secret(db: Session, secret: bytes) -> None:
    """Replace the store's secret (inside the caller's transaction, beside its audit entry): a store
    taking over another's outputs perturbs every count as the other did."""
    cell_key_secret(db)  # refuses a store whose secret was removed by hand
    db.execute("UPDATE disclosure_meta SET value = $value WHERE name = $name",
               {"value": secret.hex(), "name": "cell_key_secret"})


def outputs_with_key(store: Store | Session) -> tuple[int, dt.datetime | None]:
    """(how many, the latest) exports and reports the audit log holds since the store's secret was last
    set: files already published with it, which a new secret would let a reader difference."""
    count, latest = store.rows(_OUTPUTS, {"key_event": KEY_EVENT})[0]
    return int(count), latest
