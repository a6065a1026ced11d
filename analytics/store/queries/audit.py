"""The audit log's SQL: append an entry after the last one, read the chain back.

The same statements run on DuckDB and on PostgreSQL (bound parameters only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd

from analytics.store.connection import Session, Store

def entry_hash(previous: str | None, seq: int, logged_at: dt.datetime, user: str | None, action: str,
               what: str, details: str | None) -> str:
    """SHA-256 over the previous entry's hash and this entry's fields: the chain that makes an
    edited or deleted entry detectable (analytics.access.audit.first_broken)."""
    text = json.dumps([previous, int(seq), logged_at.isoformat(), user, action, what, details])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


COLUMNS = ("seq", "logged_at", "user_name", "action", "what", "details", "entry_hash")


def last_entry(db: Session) -> tuple[int, str | None]:
    """(seq, entry_hash) of the newest entry; (0, None) for an empty log."""
    rows = db.rows("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), rows[0][1]) if rows else (0, None)


def append(db: Session, seq: int, logged_at: dt.datetime, user: str | None, action: str, what: str,
           details: str | None, entry_hash: str) -> None:
    db.execute("INSERT INTO audit_log (seq, logged_at, user_name, action, what, details, entry_hash) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", [seq, logged_at, user, action, what, details, entry_hash])


def chain(db: Session | Store) -> list[tuple]:
    """Every entry in order, with the columns the hash covers and the stored hash."""
    return db.rows(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq")


def count(store: Store) -> int:
    """How many entries the log holds."""
    return int(store.scalar("SELECT count(*) FROM audit_log"))


def set_hash(db: Session, seq: int, entry_hash: str) -> None:
    """Only for the migration that introduced the hashes (server mode refuses updates)."""
    db.execute("UPDATE audit_log SET entry_hash = ? WHERE seq = ?", [entry_hash, seq])


def entries(store: Store, action: str | None, limit: int) -> pd.DataFrame:
    return store.df("SELECT seq, logged_at, user_name, action, what, details FROM audit_log"
                    " WHERE CAST(? AS VARCHAR) IS NULL OR action = ? ORDER BY seq DESC LIMIT ?",
                    [action, action, limit])
