"""Dashboard accounts: create, list, disable, change role, and sign in with lock-out.

Passwords are stored as argon2id hashes (argon2-cffi), never in clear and never taken
from the command line. A sign-in that fails counts against the account; after
`SignInPolicy.max_failures` failures in a row the account is locked for
`lockout_minutes`. Unknown names cost the same hashing time as known ones and get the
same message, so the form does not tell which names exist. Every sign-in, failure and
lock-out goes to the audit log in the same transaction as the account change.

The policy's settings (OUTCOMES_MAX_FAILED_SIGN_INS, OUTCOMES_LOCKOUT_MINUTES,
OUTCOMES_IDLE_MINUTES, OUTCOMES_SESSION_HOURS) are declared in analytics.settings and
read from the environment when a policy is made.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from analytics import settings
from analytics.access import audit
from analytics.access.roles import ROLES, User
from analytics.store.connection import Session, Store

__all__ = ["MIN_PASSWORD", "SignInError", "SignInPolicy", "add_user", "authenticate", "disable_user",
           "has_users", "list_users", "session_ended", "set_role", "sign_in_required"]

MIN_PASSWORD = 12
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
_hasher = PasswordHasher()
# An unknown user name is checked against this hash, so it takes as long as a wrong password. A
# constant (argon2id with the hasher's default cost, of a random password nobody kept) rather than
# hashing at import, which cost every process 0.3-0.5 s, the dashboard's first page included;
# tests/test_users.py checks that it has the hasher's current parameters.
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$jovrvRZRoDEe9eJD2RKv+g$Zra2kSQ4DIlWeXp9kI0lK6b7cwp87nRFQCTkr7pfPJU"
FAILED = "Sign-in failed: wrong user name or password."


@dataclass(frozen=True)
class SignInPolicy:
    max_failures: int = field(default_factory=settings.MAX_FAILED_SIGN_INS.value)
    lockout_minutes: float = field(default_factory=settings.LOCKOUT_MINUTES.value)
    idle_minutes: float = field(default_factory=settings.IDLE_MINUTES.value)
    session_hours: float = field(default_factory=settings.SESSION_HOURS.value)


class SignInError(Exception):
    """The sign-in was refused; the message is safe to show."""


def _check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise ValueError("a user name is 2-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def sign_in_required(store: Store) -> bool:
    """True once the store holds anything besides the bundled synthetic sample."""
    return bool(store.scalar("SELECT count(*) FROM import_batches WHERE source IS DISTINCT FROM 'sample'"))


def session_ended(signed_in_at: dt.datetime, last_seen: dt.datetime, now: dt.datetime,
                  policy: SignInPolicy | None = None) -> str | None:
    """Why a dashboard session has ended ('idle' or 'expired'), or None while it is valid."""
    policy = policy or SignInPolicy()
    if now - signed_in_at > dt.timedelta(hours=policy.session_hours):
        return "expired"
    if now - last_seen > dt.timedelta(minutes=policy.idle_minutes):
        return "idle"
    return None


def has_users(store: Store) -> bool:
    return bool(store.scalar("SELECT count(*) FROM users"))


def add_user(store: Store, name: str, role: str, password: str, *, by: str | None = None) -> None:
    _check_name(name), _check_role(role), _check_password(password)
    with store.transaction() as db:
        if db.scalar("SELECT count(*) FROM users WHERE lower(user_name) = lower(?)", [name]):
            raise ValueError(f"user {name!r} already exists")
        db.execute("INSERT INTO users (user_name, role, password_hash, created_at) VALUES (?, ?, ?, now())",
                   [name, role, _hasher.hash(password)])
        audit.record(db, "user_change", name, user=by, change="added", role=role)


def _update(store: Store, name: str, sql: str, params: list, by: str | None, **details: object) -> None:
    with store.transaction() as db:
        if not db.scalar("SELECT count(*) FROM users WHERE user_name = ?", [name]):
            raise ValueError(f"no user {name!r}")
        db.execute(sql, [*params, name])
        audit.record(db, "user_change", name, user=by, **details)


def disable_user(store: Store, name: str, *, by: str | None = None) -> None:
    _update(store, name, "UPDATE users SET disabled = true WHERE user_name = ?", [], by, change="disabled")


def set_role(store: Store, name: str, role: str, *, by: str | None = None) -> None:
    _update(store, name, "UPDATE users SET role = ? WHERE user_name = ?", [_check_role(role)], by,
            change="role", role=role)


def list_users(store: Store) -> pd.DataFrame:
    return store.df("SELECT user_name, role, disabled, created_at, last_sign_in, failed_sign_ins, locked_until "
                    "FROM users ORDER BY user_name")


def authenticate(store: Store, name: str, password: str, *, policy: SignInPolicy | None = None,
                 now: dt.datetime | None = None) -> User:
    """The user, if `password` is right and the account is enabled and not locked; else
    SignInError (the failure, and a lock-out, are recorded)."""
    policy = policy or SignInPolicy()
    now = now or dt.datetime.now()
    with store.transaction() as db:  # the failure is recorded, so it is raised after the commit
        outcome = _sign_in(db, name or "", password, now, policy)
    if isinstance(outcome, SignInError):
        raise outcome
    return outcome


def _sign_in(db: Session, name: str, password: str, now: dt.datetime,
             policy: SignInPolicy) -> User | SignInError:
    row = db.rows("SELECT role, password_hash, disabled, failed_sign_ins, locked_until FROM users "
                  "WHERE user_name = ?", [name])
    if not row:
        _verify(_DUMMY, password)
        audit.record(db, "sign_in_failed", name, user=name, reason="unknown user")
        return SignInError(FAILED)
    role, stored, disabled, failures, locked_until = row[0]
    if locked_until is not None and locked_until > now:
        audit.record(db, "sign_in_failed", name, user=name, reason="locked")
        return SignInError(f"Too many failed sign-ins: this account is locked until {locked_until:%H:%M}.")
    if disabled or not stored or not _verify(stored, password):
        _failed(db, name, failures + 1, now, policy, "disabled" if disabled else "wrong password")
        return SignInError(FAILED)
    db.execute("UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in = ? WHERE user_name = ?",
               [now, name])
    if _hasher.check_needs_rehash(stored):
        db.execute("UPDATE users SET password_hash = ? WHERE user_name = ?", [_hasher.hash(password), name])
    audit.record(db, "sign_in", name, user=name, role=role)
    return User(name, role)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _failed(db: Session, name: str, failures: int, now: dt.datetime, policy: SignInPolicy, reason: str) -> None:
    if failures >= policy.max_failures:
        until = now + dt.timedelta(minutes=policy.lockout_minutes)
        db.execute("UPDATE users SET failed_sign_ins = 0, locked_until = ? WHERE user_name = ?", [until, name])
        audit.record(db, "sign_in_failed", name, user=name, reason=reason)
        audit.record(db, "lock_out", name, user=name, until=until, failures=failures)
    else:
        db.execute("UPDATE users SET failed_sign_ins = ? WHERE user_name = ?", [failures, name])
        audit.record(db, "sign_in_failed", name, user=name, reason=reason)
