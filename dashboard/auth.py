"""Signing in to the dashboard: the form, single sign-on, timeouts, sign-out, page guards.

The decisions live in analytics.access.users (passwords, lock-out, timeouts) and
analytics.access.roles (what a role may see); this module only keeps the session's user in
st.session_state and draws the form. On the bundled sample nobody signs in: the demo is
open and says so.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from analytics.access import roles as access
from analytics.access import audit
from analytics.access import users
from analytics.access.roles import User
from dashboard.common import get_store

DEMO = User("demo", "admin")
SIGNED_OUT_BECAUSE = {"idle": "You were signed out after {idle:g} minutes without activity.",
                      "expired": "Your session ended after {hours:g} hours: please sign in again."}


def _sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return False


def _end(reason: str) -> None:
    user: User | None = st.session_state.pop("user", None)
    if user is not None:
        audit.record(get_store(), "sign_out", user.name, user=user.name, reason=reason)
    st.session_state.pop("signed_in_at", None)
    st.session_state["signed_out_because"] = reason


def _start(user: User) -> None:
    now = dt.datetime.now()
    st.session_state.update(user=user, signed_in_at=now, last_seen=now)
    st.session_state.pop("signed_out_because", None)


def current() -> User | None:
    """The session's user after the timeout checks (the demo user on the sample), or None."""
    store = get_store()
    if not users.sign_in_required(store):
        return DEMO
    user: User | None = st.session_state.get("user")
    if user is None:
        return None
    now = dt.datetime.now()
    ended = users.session_ended(st.session_state["signed_in_at"], st.session_state["last_seen"], now)
    if ended:
        _end(ended)
        return None
    st.session_state["last_seen"] = now
    return user


def sign_in_form() -> None:
    """The sign-in page: name and password, or the organisation's single sign-on."""
    store = get_store()
    st.title("Sign in")
    policy = users.SignInPolicy()
    reason = st.session_state.get("signed_out_because")
    if reason in SIGNED_OUT_BECAUSE:
        st.info(SIGNED_OUT_BECAUSE[reason].format(idle=policy.idle_minutes, hours=policy.session_hours))
    if not users.has_users(store):
        st.warning("This store holds your own data, so the dashboard needs accounts. Create the first one "
                   "on the server: `python -m analytics users add NAME --role admin`.")
        st.stop()
    if _sso_configured():
        _sso(store)
    with st.form("sign_in", enter_to_submit=True):
        name = st.text_input("User name", key="sign_in_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            user = users.authenticate(store, name.strip(), password, policy=policy)
        except users.SignInError as exc:
            st.error(str(exc))
        else:
            _start(user)
            st.rerun()


def _sso(store) -> None:
    """Single sign-on with st.login (OIDC, configured in secrets); the role comes from our
    user table, whose user name is the person's e-mail address."""
    if not st.user.is_logged_in:
        if st.button("Sign in with your organisation's account"):
            st.login()
        return
    email = str(st.user.get("email", ""))
    match = users.list_users(store).query("user_name == @email and not disabled")
    if match.empty:
        audit.record(store, "sign_in_failed", email, user=email, reason="no account for single sign-on")
        st.error(f"No dashboard account for {email}: ask an admin to add one.")
        return
    user = User(email, match.role.iloc[0])
    audit.record(store, "sign_in", email, user=email, role=user.role, method="single sign-on")
    _start(user)
    st.rerun()


def sign_out_button(user: User) -> None:
    with st.sidebar:
        if user is DEMO:
            st.info("Demo on the bundled **synthetic sample**: open to anyone, no sign-in. Once you import "
                    "your own data, everyone signs in.", icon=":material/science:")
            return
        st.caption(f"Signed in as **{user.name}** ({user.role.replace('_', ' ')})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            _end("signed out")
            if _sso_configured() and st.user.is_logged_in:
                st.logout()
            st.rerun()


def guard(permission: str) -> User:
    """Every page's first line: the signed-in user if their role may see this page, else
    stop with a message. Also makes the user the one analytics/ checks data access for."""
    access.enforce()
    access.set_user(None)
    user = current()
    if user is None:
        sign_in_form()
        st.stop()
    if not user.may(permission):
        audit.record(get_store(), "view", "refused page", user=user.name, permission=permission)
        st.error("Your role cannot open this page.")
        st.stop()
    access.set_user(user)
    return user


def log_view(user: User, what: str, **details: object) -> None:
    """Record a view of participant-level data, once per session and selection."""
    key = (what, repr(sorted(details.items())))
    seen: set = st.session_state.setdefault("views_logged", set())
    if key not in seen:
        audit.record(get_store(), "view", what, user=user.name, **details)
        seen.add(key)
