"""SQL of disclosure control: the store's cell-key secret (analytics.publish.cellkey).

The secret lives in the store itself (table ``disclosure_meta``, made on first use), so every
output of one store gets the same noise for the same cell, and another store's keys differ.
On the server store the table is on PostgreSQL (made with the secret when the owner sets the
store up), so every process, data version and site scope uses the one secret.
"""

from __future__ import annotations

import secrets

from analytics.store.connection import Store

_CREATE = "CREATE TABLE IF NOT EXISTS disclosure_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
_EXISTS = ("SELECT count(*) FROM information_schema.tables WHERE table_name = 'disclosure_meta'"
           " AND table_catalog = current_database() AND table_schema = current_schema()")  # DuckDB and PostgreSQL
_GET = "SELECT value FROM disclosure_meta WHERE name = $name"


def cell_key_secret(store: Store) -> bytes:
    """The store's 32-byte secret for record keys; made and kept on first use."""
    if store.scalar(_EXISTS):
        value = store.scalar(_GET, {"name": "cell_key_secret"})
        if value is not None:
            return bytes.fromhex(value)
    with store.transaction() as db:
        db.execute(_CREATE)
        value = db.scalar(_GET, {"name": "cell_key_secret"})
        if value is None:
            value = secrets.token_hex(32)
            db.execute("INSERT INTO disclosure_meta VALUES ($name, $value)",
                       {"name": "cell_key_secret", "value": value})
    return bytes.fromhex(value)
