"""The audit log (analytics.access.audit) as SQL: append an entry, read the latest."""

from __future__ import annotations

import pandas as pd

from analytics.store.connection import Session, Store

__all__ = ["append", "entries"]


def append(db: Session, user: str | None, action: str, what: str, details: str | None) -> None:
    """Append one entry, numbered after the last, inside the caller's transaction."""
    db.execute("INSERT INTO audit_log SELECT coalesce(max(seq), 0) + 1, now(), ?, ?, ?, ? FROM audit_log",
               [user, action, what, details])


def entries(store: Store, action: str | None, limit: int) -> pd.DataFrame:
    """The latest `limit` entries first: all actions, or only `action`."""
    return store.df("SELECT seq, logged_at, user_name, action, what, details FROM audit_log"
                    " WHERE ? IS NULL OR action = ? ORDER BY seq DESC LIMIT ?", [action, action, limit])
