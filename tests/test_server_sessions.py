"""Sessions, throttling and site-scoped accounts on the server store: the tables are live on
PostgreSQL, so two processes (two stores here, each with its own connection) see one
another's sign-ins, sessions and failures at once, as the application's role."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.access import sessions, users
from analytics.store.connection import Store
from tests.pg import pg_db, pg_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery staple"
POLICY = users.SignInPolicy(max_failures=2, lockout_minutes=15, idle_minutes=30, session_hours=12)


def test_sessions_and_throttling_are_shared_between_processes(pg_db):  # noqa: F811
    with Store.open(pg_db) as one, Store.open(pg_db) as two:
        users.add_user(one, "lead", "director", PASSWORD, sites=["Riverside", "Downtown"])
        user = users.authenticate(two, "lead", PASSWORD, client="10.0.0.1", policy=POLICY)
        assert user.sites == ("Downtown", "Riverside")
        token = sessions.start(one, user, policy=POLICY)
        assert sessions.resume(two, token, policy=POLICY).user == user  # a reload served by the other process
        now = dt.datetime.now()
        for store in (one, two):  # failures counted across processes
            with pytest.raises(users.SignInError, match="wrong user name"):
                users.authenticate(store, "lead", "wrong password!", client="10.0.0.9", policy=POLICY, now=now)
        with pytest.raises(users.SignInError, match="wait 1 seconds"):
            users.authenticate(one, "lead", PASSWORD, client="10.0.0.9", policy=POLICY, now=now)
        users.set_sites(two, "lead", ["Riverside"])  # an account change ends its sessions everywhere
        assert sessions.resume(one, token, policy=POLICY).ended == "account changed"
        assert users.list_users(one).set_index("user_name").loc["lead", "sites"] == "Riverside"
