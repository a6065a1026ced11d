"""Signing in to the dashboard: the form, single sign-on, timeouts, sign-out, page guards.

The decisions live in analytics.access.users (passwords, throttling, timeouts),
analytics.access.sessions (the signed token and its server record) and
analytics.access.roles (what a role and its sites may see); this module keeps the token in
st.session_state and in a browser cookie, and draws the form. On the bundled sample nobody signs in: the demo is
open and says so.
"""

from __future__ import annotations

import streamlit as st

from analytics.access import roles as access
from analytics.access import audit
from analytics.access import sessions
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


COOKIE = "outcomes_session"


def _token() -> str | None:
    """This tab's session token, else the browser's cookie (a reload, a bookmark, a second tab)."""
    return st.session_state.get("session_token") or st.context.cookies.get(COOKIE)


def _end(reason: str) -> None:
    """End the session everywhere (the server record) and in this tab; the cookie goes next run."""
    sessions.end(get_store(), _token(), reason)
    _forget(reason)


def _forget(reason: str | None) -> None:
    for key in ("user", "session_token"):
        st.session_state.pop(key, None)
    if reason in SIGNED_OUT_BECAUSE or reason == "signed out":
        st.session_state["signed_out_because"] = reason


def _client() -> str:
    """Where a sign-in comes from, for throttling: the browser's address (not a forwarded header,
    which anyone can write)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def _start(user: User) -> None:
    st.session_state.update(user=user, session_token=sessions.start(get_store(), user))
    st.session_state.pop("signed_out_because", None)


def current() -> User | None:
    """The session's user while its server record lives (the demo user on the sample), or None.

    Every run asks the store, so signing out or a timeout in one tab ends every tab."""
    store = get_store()
    if not users.sign_in_required(store):
        return DEMO
    token = _token()
    if token is None:
        return None
    found = sessions.resume(store, token)
    if found.user is None:
        _forget(found.ended)
        return None
    st.session_state.update(user=found.user, session_token=token)
    return found.user


def cookie() -> None:
    """Keep the browser's cookie in step with the session: set while signed in, removed after.

    Streamlit reads cookies (st.context.cookies) but has no call that sets one, so a few lines
    of JavaScript in the page set it (st.html runs them in the page, not in an iframe). Hence
    the cookie cannot be HttpOnly; it is SameSite=Strict, Secure over https, and lives no
    longer than the session; the token is worthless once the server record has ended."""
    token = st.session_state.get("session_token")
    if token is None and COOKIE not in st.context.cookies:
        return
    hours = users.SignInPolicy().session_hours
    value, age = (token, int(hours * 3600)) if token else ("", 0)
    st.html(f"""<script>document.cookie = "{COOKIE}={value}; Path=/; Max-Age={age}; SameSite=Strict"
        + (location.protocol === "https:" ? "; Secure" : "");</script>""", unsafe_allow_javascript=True)


def watch() -> None:
    """Clear the page when the session ends without a click (idle, expired, signed out in another
    tab): a fragment checks the server record every few seconds and reruns the whole app."""
    policy = users.SignInPolicy()
    every = max(1.0, min(30.0, policy.idle_minutes * 60 / 4))

    @st.fragment(run_every=every)
    def check() -> None:
        token = st.session_state.get("session_token")
        if token and sessions.resume(get_store(), token, touch=False).user is None:
            st.rerun(scope="app")

    check()


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
            user = users.authenticate(store, name.strip(), password, client=_client(),
                                      policy=policy)
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
    user = users.load_user(store, email)
    audit.record(store, "sign_in", email, user=email, role=user.role, method="single sign-on")
    _start(user)
    st.rerun()


def sign_out_button(user: User) -> None:
    with st.sidebar:
        if user is DEMO:
            st.info("Demo on the bundled **synthetic sample**: open to anyone, no sign-in. Once you import "
                    "your own data, everyone signs in.", icon=":material/science:")
            return
        st.caption(f"Signed in as **{user.name}** ({user.role.replace('_', ' ')}); sees **{user.scope()}**")
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
