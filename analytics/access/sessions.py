"""Dashboard sessions that survive a reload: a signed, expiring token tied to a server record.

Why both: the token lives in the browser (a cookie), so a reload, a bookmark or a second
tab finds the session again; the record lives in the store, so signing out, a timeout, or
a change to the account ends the session in every tab at once. The token is
``<random id>.<expiry>.<HMAC-SHA256>`` signed with a key kept in the store; the record is
keyed by the SHA-256 of the id, so someone reading the store cannot take over a session.

A session ends `idle_minutes` after its last use (in any tab) and `session_hours` after
signing in (SignInPolicy, from analytics.settings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import weakref
from dataclasses import dataclass

from analytics.access import audit
from analytics.access.roles import User
from analytics.access.users import SignInPolicy, load_user, session_ended
from analytics.store.connection import Store
from analytics.store.queries import sessions as queries

__all__ = ["TOUCH_EVERY", "Resumed", "end", "resume", "start"]

TOUCH_EVERY = dt.timedelta(seconds=15)  # last use is written at most this often (one write, not one per click)

# The signing key per open store, read once: it is made with the store and never changes, and
# reading it on every page run and session check was the most frequent query of a dashboard
# process on the server store (py-spy, benchmarks/bench_server.py --profile).
_KEYS: weakref.WeakKeyDictionary[Store, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Resumed:
    """What a token gives: the user (None when the session is over) and why it is over."""

    user: User | None
    ended: str | None = None  # 'idle', 'expired', 'signed out', 'account changed', 'invalid'


def _sign(store: Store, body: str) -> str:
    key = _KEYS.get(store)
    if key is None:
        key = _KEYS[store] = queries.session_key(store)
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(store: Store, user: User, *, policy: SignInPolicy | None = None, now: dt.datetime | None = None) -> str:
    """Open a session for `user` (just signed in) and return its token."""
    policy = policy or SignInPolicy()
    now = now or dt.datetime.now()
    session_id = secrets.token_urlsafe(32)
    expires = int((now + dt.timedelta(hours=policy.session_hours)).timestamp())
    with store.transaction() as db:
        queries.insert_session(db, _id_hash(session_id), user.name, now)
    body = f"{session_id}.{expires}"
    return f"{body}.{_sign(store, body)}"


def _session_id(store: Store, token: str, now: dt.datetime | None) -> str | None:
    """The token's session id when its signature is right and it has not expired by `now`
    (None: expired or not, for signing out)."""
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(store, body), parts[2]) or (now is not None and int(parts[1]) < now.timestamp()):
        return None
    return parts[0]


def resume(store: Store, token: str | None, *, touch: bool = True, policy: SignInPolicy | None = None,
           now: dt.datetime | None = None) -> Resumed:
    """The user a token stands for while its session lives; a session found past a timeout is
    ended (and recorded) here. `touch` counts this as use (a page run, not a timer check)."""
    policy = policy or SignInPolicy()
    now = now or dt.datetime.now()
    session_id = _session_id(store, token or "", now)
    record = queries.session(store, _id_hash(session_id)) if session_id else None
    if record is None:
        return Resumed(None, "invalid")
    name, created, last_seen, ended_at, reason = record
    if ended_at is not None:
        return Resumed(None, reason)
    why = session_ended(created, last_seen, now, policy)
    user = load_user(store, name)
    if why is None and user is None:
        why = "account changed"
    if why is not None:
        end(store, token, why, now=now)
        return Resumed(None, why)
    if touch and now - last_seen >= min(TOUCH_EVERY, dt.timedelta(minutes=policy.idle_minutes / 10)):
        with store.transaction() as db:
            queries.touch_session(db, _id_hash(session_id), now)
    return Resumed(user)


def end(store: Store, token: str | None, reason: str, *, now: dt.datetime | None = None) -> None:
    """End the token's session everywhere (sign-out or a timeout); recorded once."""
    now = now or dt.datetime.now()
    session_id = _session_id(store, token or "", None)
    if session_id is None:
        return
    id_hash = _id_hash(session_id)
    with store.transaction() as db:
        record = queries.session(db, id_hash)
        if record is not None and queries.end_session(db, id_hash, now, reason):
            audit.record(db, "sign_out", record[0], user=record[0], reason=reason)
