"""SQL of disclosure control: the store's cell-key secret (analytics.publish.cellkey).

The secret lives in the store itself (table ``disclosure_meta``, schema step 8), so every output of
one store gets the same noise for the same cell, and another store's keys differ. On the server
store the table is live (analytics.store.server.LIVE_TABLES): the secret is PostgreSQL's, the same
for every process, never the mirror's.
"""

from __future__ import annotations

from analytics.store.connection import Store, StoreError

__all__ = ["cell_key_secret"]

_GET = "SELECT value FROM disclosure_meta WHERE name = $name"


def cell_key_secret(store: Store) -> bytes:
    """The store's 32-byte secret for record keys (made by the schema step that made the table)."""
    value = store.scalar(_GET, {"name": "cell_key_secret"})
    if value is None:
        raise StoreError(f"{store.path} has no cell-key secret (table disclosure_meta): it was altered by hand")
    return bytes.fromhex(value)
