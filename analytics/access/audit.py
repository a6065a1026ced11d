"""The audit log: every export, report and import, with when, what, filters and user.

Why in the store: the log travels with the data it is about, and one transaction can
hold an import and its audit entry. Append-only: this module only inserts, and no
other module writes to ``audit_log``. Details are JSON text so the log stays readable
with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, is_dataclass
from typing import Any

import pandas as pd

from analytics.store.connection import Session, Store

__all__ = ["ACTIONS", "entries", "record"]

ACTIONS = ("export", "report", "import", "view", "sign_in", "sign_in_failed", "lock_out", "sign_out",
           "user_change", "throttle")


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
    sql = ("INSERT INTO audit_log SELECT coalesce(max(seq), 0) + 1, now(), ?, ?, ?, ? FROM audit_log")
    params = [user, action, what, text]
    if isinstance(store, Session):
        store.execute(sql, params)
        return
    with store.transaction() as db:
        db.execute(sql, params)


def entries(store: Store, *, action: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """The latest entries first (all actions, or one)."""
    return store.df("SELECT seq, logged_at, user_name, action, what, details FROM audit_log"
                    " WHERE ? IS NULL OR action = ? ORDER BY seq DESC LIMIT ?", [action, action, limit])
