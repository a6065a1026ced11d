"""Dashboard accounts: create, list, disable, change role or sites, and sign in with throttling.

Passwords are stored as argon2id hashes (argon2-cffi), never in clear and never taken
from the command line. Failed sign-ins are counted per user name and client (and per name
over all clients); past `SignInPolicy.max_failures` from one client (4x that from all
clients) each further attempt must wait a delay that doubles, up to `lockout_minutes`. The
name need not exist: unknown and known names are counted, answered and timed alike (one
argon2 verification each, a throttled attempt included), so the form tells nobody which
names exist and no stranger can lock an account out. Every sign-in, failure and delay goes
to the audit log in the same transaction as the account change.

An account may be scoped to sites (`User.sites`): every data function then sees only those
sites (analytics.access.roles.scoped_sites).

The policy's settings (OUTCOMES_MAX_FAILED_SIGN_INS, OUTCOMES_LOCKOUT_MINUTES,
OUTCOMES_IDLE_MINUTES, OUTCOMES_SESSION_HOURS) are declared in analytics.settings and
read from the environment when a policy is made.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from analytics import settings
from analytics.access import audit
from analytics.access.roles import ROLES, User
from analytics.store.connection import Session, Store
from analytics.store.queries import sessions as session_queries
from analytics.store.queries import summary
from analytics.store.queries import users as queries

__all__ = ["ALL_CLIENTS", "MIN_PASSWORD", "SignInError", "SignInPolicy", "add_user", "authenticate", "delay_seconds",
           "disable_user", "has_users", "list_users", "load_user", "session_ended", "set_role", "set_sites",
           "sign_in_required"]

MIN_PASSWORD = 12
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
_hasher = PasswordHasher()
# An unknown user name is checked against this hash, so it takes as long as a wrong password. A
# constant (argon2id with the hasher's default cost, of a random password nobody kept) rather than
# hashing at import, which cost every process 0.3-0.5 s, the dashboard's first page included;
# tests/test_users.py checks that it has the hasher's current parameters.
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$jovrvRZRoDEe9eJD2RKv+g$Zra2kSQ4DIlWeXp9kI0lK6b7cwp87nRFQCTkr7pfPJU"
FAILED = "Sign-in failed: wrong user name or password."
WAIT = "Too many failed sign-ins: wait {seconds} seconds, then try again."
ALL_CLIENTS = "*"  # the throttle row counting a name's failures from every client
ALL_CLIENTS_FACTOR = 4  # failures from all clients before delays begin, in max_failures


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
    """True once the store holds anything besides the bundled synthetic sample, and always on
    the server store (it is never the open demo)."""
    return store.is_server or summary.has_user_data(store)


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
    return queries.count_users(store) > 0


def _check_sites(sites: list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Sites as stored: a sorted list without blanks or repeats, or None for every site."""
    cleaned = sorted({s.strip() for s in sites or () if s.strip()})
    return cleaned or None


def add_user(store: Store, name: str, role: str, password: str, *, sites: list[str] | None = None,
             by: str | None = None) -> None:
    _check_name(name), _check_role(role), _check_password(password)
    scoped = _check_sites(sites)
    with store.transaction() as db:
        if queries.name_taken(db, name):
            raise ValueError(f"user {name!r} already exists")
        queries.insert_user(db, name, role, _hasher.hash(password))
        if scoped:
            session_queries.set_sites(db, name, scoped)
        audit.record(db, "user_change", name, user=by, change="added", role=role, sites=scoped)


def _update(store: Store, name: str, apply: Callable[[Session], None], by: str | None,
            **details: object) -> None:
    """Apply a change to an existing account, end its open sessions (they carry the old role or
    sites) and record it (details), in one transaction."""
    with store.transaction() as db:
        if not queries.user_exists(db, name):
            raise ValueError(f"no user {name!r}")
        apply(db)
        session_queries.end_user_sessions(db, name, dt.datetime.now(), "account changed")
        audit.record(db, "user_change", name, user=by, **details)


def disable_user(store: Store, name: str, *, by: str | None = None) -> None:
    _update(store, name, lambda db: queries.set_disabled(db, name), by, change="disabled")


def set_role(store: Store, name: str, role: str, *, by: str | None = None) -> None:
    _check_role(role)
    _update(store, name, lambda db: queries.set_role(db, name, role), by, change="role", role=role)


def set_sites(store: Store, name: str, sites: list[str] | None, *, by: str | None = None) -> None:
    """Scope an account to `sites` (None or empty: every site)."""
    scoped = _check_sites(sites)
    with store.transaction() as db:
        if session_queries.account(db, name) is None:
            raise ValueError(f"no user {name!r}")
        session_queries.set_sites(db, name, scoped)
        session_queries.end_user_sessions(db, name, dt.datetime.now(), "account changed")
        audit.record(db, "user_change", name, user=by, change="sites", sites=scoped)


def load_user(store: Store | Session, name: str) -> User | None:
    """The account as a User (role and sites), or None when it is missing or disabled."""
    row = session_queries.account(store, name)
    if row is None or row[1]:
        return None
    return User(name, row[0], tuple(row[2] or ()))


def list_users(store: Store) -> pd.DataFrame:
    return queries.list_users(store)


def authenticate(store: Store, name: str, password: str, *, client: str = "unknown",
                 policy: SignInPolicy | None = None, now: dt.datetime | None = None) -> User:
    """The user, if `password` is right and the account is enabled; else SignInError (the
    failure, and any delay it starts, are recorded). `client` names where the attempt comes
    from (the browser's address), for throttling."""
    policy = policy or SignInPolicy()
    now = now or dt.datetime.now()
    with store.transaction() as db:  # the failure is recorded, so it is raised after the commit
        outcome = _sign_in(db, name or "", password, client or "unknown", now, policy)
    if isinstance(outcome, SignInError):
        raise outcome
    return outcome


def delay_seconds(failures: int, free: int, policy: SignInPolicy) -> float:
    """The wait after `failures` failures when `free` are allowed without one: 1 s, then doubling,
    at most lockout_minutes."""
    if failures < free:
        return 0.0
    return float(min(2.0 ** min(failures - free, 30), policy.lockout_minutes * 60))


def _wait(db: Session, name: str, client: str, now: dt.datetime, policy: SignInPolicy) -> float:
    """Seconds this (name, client) must still wait before its next attempt; 0 when it may try."""
    waits = [0.0]
    for who, failures, last in session_queries.failures(db, name, client, ALL_CLIENTS):
        free = policy.max_failures * (ALL_CLIENTS_FACTOR if who == ALL_CLIENTS else 1)
        waits.append(delay_seconds(failures, free, policy) - (now - last).total_seconds())
    return max(waits)


def _sign_in(db: Session, name: str, password: str, client: str, now: dt.datetime,
             policy: SignInPolicy) -> User | SignInError:
    wait = _wait(db, name, client, now, policy)
    row = session_queries.sign_in_row(db, name)
    if wait > 0:
        _verify(_DUMMY, password)  # the same work as any other answer
        audit.record(db, "sign_in_failed", name, user=name, reason="throttled", client=client)
        return SignInError(WAIT.format(seconds=math.ceil(wait)))
    role, stored, disabled, sites = row or (None, None, True, None)
    right = _verify(stored or _DUMMY, password)
    if not row or disabled or not stored or not right:
        reason = "unknown user" if not row else "disabled" if disabled else "wrong password"
        _failed(db, name, client, now, policy, reason)
        return SignInError(FAILED)
    queries.signed_in(db, name, now)
    session_queries.forget_failures(db, name, client)
    if _hasher.check_needs_rehash(stored):
        queries.set_password_hash(db, name, _hasher.hash(password))
    audit.record(db, "sign_in", name, user=name, role=role, client=client)
    return User(name, role, tuple(sites or ()))


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _failed(db: Session, name: str, client: str, now: dt.datetime, policy: SignInPolicy, reason: str) -> None:
    """Count the failure for this client and for all clients; record it, and the delay it starts."""
    audit.record(db, "sign_in_failed", name, user=name, reason=reason, client=client)
    for who, free in ((client, policy.max_failures), (ALL_CLIENTS, policy.max_failures * ALL_CLIENTS_FACTOR)):
        failures = session_queries.note_failure(db, name, who, now)
        delay = delay_seconds(failures, free, policy)
        if delay:
            audit.record(db, "throttle", name, user=name, client=who, failures=failures, delay_seconds=delay)
