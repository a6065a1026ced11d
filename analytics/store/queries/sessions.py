"""Server-side sessions, the token-signing key, sign-in throttling and account sites as SQL
(analytics.access.sessions and analytics.access.users call these). Writes take the Session of
the caller's transaction, so a change and its audit entry land together. Plain SQL that DuckDB
and PostgreSQL both run: on the server store these tables are live (analytics.store.server)."""

from __future__ import annotations

import datetime as dt

from analytics.store.connection import Session, Store

__all__ = ["account", "end_session", "end_user_sessions", "failures", "forget_failures", "insert_session",
           "note_failure", "session", "session_key", "set_sites", "sign_in_row", "touch_session"]


def session_key(store: Store) -> str:
    """The key that signs session tokens (made once per store by the schema step 6)."""
    return str(store.scalar("SELECT key FROM session_keys ORDER BY created_at DESC LIMIT 1"))


def insert_session(db: Session, id_hash: str, user: str, now: dt.datetime) -> None:
    db.execute("INSERT INTO dashboard_sessions (id_hash, user_name, created_at, last_seen) VALUES (?, ?, ?, ?)",
               [id_hash, user, now, now])


def session(store: Store | Session, id_hash: str) -> tuple | None:
    """(user_name, created_at, last_seen, ended_at, end_reason), or None for no such session."""
    rows = store.rows("SELECT user_name, created_at, last_seen, ended_at, end_reason FROM dashboard_sessions "
                      "WHERE id_hash = ?", [id_hash])
    return rows[0] if rows else None


def touch_session(db: Session, id_hash: str, now: dt.datetime) -> None:
    db.execute("UPDATE dashboard_sessions SET last_seen = ? WHERE id_hash = ? AND ended_at IS NULL", [now, id_hash])


def end_session(db: Session, id_hash: str, now: dt.datetime, reason: str) -> bool:
    """End one session; False when it had already ended (so the end is recorded once)."""
    rows = db.rows("UPDATE dashboard_sessions SET ended_at = ?, end_reason = ? WHERE id_hash = ? AND ended_at IS NULL "
                   "RETURNING user_name", [now, reason, id_hash])
    return bool(rows)


def end_user_sessions(db: Session, user: str, now: dt.datetime, reason: str) -> int:
    """End every open session of an account (disabled, role or sites changed); how many."""
    rows = db.rows("UPDATE dashboard_sessions SET ended_at = ?, end_reason = ? WHERE user_name = ? AND ended_at IS NULL "
                   "RETURNING id_hash", [now, reason, user])
    return len(rows)


def account(store: Store | Session, name: str) -> tuple | None:
    """(role, disabled, sites) of an account, or None."""
    rows = store.rows("SELECT role, disabled, sites FROM users WHERE user_name = ?", [name])
    return rows[0] if rows else None


def sign_in_row(db: Session, name: str) -> tuple | None:
    """(role, password_hash, disabled, sites) of an account, or None."""
    rows = db.rows("SELECT role, password_hash, disabled, sites FROM users WHERE user_name = ?", [name])
    return rows[0] if rows else None


def set_sites(db: Session, name: str, sites: list[str] | None) -> None:
    db.execute("UPDATE users SET sites = ?::VARCHAR[] WHERE user_name = ?", [sites, name])


def failures(db: Session, name: str, client: str, all_clients: str) -> list[tuple]:
    """(client, failures, last_failed_at) of a user name from `client` and from all clients."""
    return db.rows("SELECT client, failures, last_failed_at FROM sign_in_throttle "
                   "WHERE user_name = ? AND client IN (?, ?)", [name, client, all_clients])


def note_failure(db: Session, name: str, client: str, now: dt.datetime) -> int:
    """Count one more failure for (name, client); the new count."""
    rows = db.rows("""
        INSERT INTO sign_in_throttle VALUES (?, ?, 1, ?)
        ON CONFLICT (user_name, client)
        DO UPDATE SET failures = sign_in_throttle.failures + 1, last_failed_at = excluded.last_failed_at
        RETURNING failures""", [name, client, now])
    return int(rows[0][0])


def forget_failures(db: Session, name: str, client: str) -> None:
    db.execute("DELETE FROM sign_in_throttle WHERE user_name = ? AND client = ?", [name, client])
