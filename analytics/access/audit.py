"""The audit log: every export, report and import, with when, what, filters and user.

Why in the store: the log travels with the data it is about, and one transaction can
hold an import and its audit entry. Append-only: this module only inserts, and no
other module writes to ``audit_log``; on the server store PostgreSQL refuses updates and
deletes (a trigger, and the application's role holds no such grant). Each entry carries a
hash over itself and the previous entry's hash, so an edit of a DuckDB file is found by
``verify`` (`python -m analytics audit verify`). Details are JSON text so the log stays
readable with plain SQL (analytics.store.queries.audit writes and reads it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, is_dataclass
from typing import Any

import pandas as pd

from analytics.store.connection import Session, Store
from analytics.store.queries import audit as q
from analytics.store.queries.audit import entry_hash

__all__ = ["ACTIONS", "entries", "entry_hash", "first_broken", "record", "size"]

# lock_out: in older entries only (throttled sign-ins, `throttle`, replaced the lock-out)
# disclosure_key: the store's cell-key secret copied from another store (analytics.cli.disclosure_key)
ACTIONS = ("export", "report", "import", "view", "sign_in", "sign_in_failed", "lock_out", "sign_out",
           "user_change", "throttle", "disclosure_key")


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def record(store: Store | Session, action: str, what: str, *, user: str | None = None,
           **details: Any) -> None:
    """Append one entry. `details` (filters, format, period, ...) are stored as JSON."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    text = json.dumps(_jsonable(details), sort_keys=True) if details else None
    if isinstance(store, Session):
        _append(store, user, action, what, text)
        return
    with store.transaction() as db:
        _append(db, user, action, what, text)


def _append(db: Session, user: str | None, action: str, what: str, details: str | None) -> None:
    db.serialise("audit_log")  # server store: one appender at a time, so seq and the chain stay whole
    seq, previous = q.last_entry(db)
    logged_at = dt.datetime.now()
    fields = (seq + 1, logged_at, user, action, what, details)
    q.append(db, *fields, entry_hash(previous, *fields))


def size(store: Store) -> int:
    """How many entries the log holds."""
    return q.count(store)


def first_broken(store: Store) -> tuple[int, str] | None:
    """The first entry whose hash does not follow from the entries before it, with why;
    None when the chain is whole. A deleted entry shows as a gap in seq."""
    previous = None
    for expected, (seq, logged_at, user, action, what, details, stored) in enumerate(q.chain(store), start=1):
        if seq != expected:
            return int(seq), f"entry {expected} is missing (the entry before it was deleted?)"
        if stored != entry_hash(previous, seq, _timestamp(logged_at), user, action, what, details):
            return int(seq), "its content or its hash was changed after it was written"
        previous = stored
    return None


def _timestamp(value: Any) -> dt.datetime:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def entries(store: Store, *, action: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """The latest entries first (all actions, or one)."""
    return q.entries(store, action, limit)
