"""Dashboard accounts (analytics.access.users) as SQL. Writes take the Session of the
caller's transaction, so an account change and its audit entry land together."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.store.connection import Session, Store

__all__ = ["count_users", "insert_user", "list_users", "name_taken", "set_disabled", "set_password_hash",
           "set_role", "signed_in", "user_exists"]


def count_users(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM users"))


def name_taken(db: Session, name: str) -> bool:
    """True if an account of that name exists, ignoring case."""
    return bool(db.scalar("SELECT count(*) FROM users WHERE lower(user_name) = lower(?)", [name]))


def user_exists(db: Session, name: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM users WHERE user_name = ?", [name]))


def insert_user(db: Session, name: str, role: str, password_hash: str) -> None:
    db.execute("INSERT INTO users (user_name, role, password_hash, created_at) VALUES (?, ?, ?, now())",
               [name, role, password_hash])


def set_disabled(db: Session, name: str) -> None:
    db.execute("UPDATE users SET disabled = true WHERE user_name = ?", [name])


def set_role(db: Session, name: str, role: str) -> None:
    db.execute("UPDATE users SET role = ? WHERE user_name = ?", [role, name])


def list_users(store: Store) -> pd.DataFrame:
    return store.df("SELECT user_name, role, coalesce(array_to_string(sites, ','), 'all') AS sites, disabled, "
                    "created_at, last_sign_in FROM users ORDER BY user_name")


def signed_in(db: Session, name: str, now: dt.datetime) -> None:
    """A successful sign-in: the time recorded. (Failures are counted in sign_in_throttle; the
    columns failed_sign_ins and locked_until of the old lock-out stay in the table, unused.)"""
    db.execute("UPDATE users SET last_sign_in = ? WHERE user_name = ?", [now, name])


def set_password_hash(db: Session, name: str, password_hash: str) -> None:
    db.execute("UPDATE users SET password_hash = ? WHERE user_name = ?", [password_hash, name])

