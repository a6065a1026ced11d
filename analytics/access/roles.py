"""Who may see what: roles, the permissions they carry, and the check data functions run.

Why a check inside analytics/: hiding a page is layout; the data must refuse too. A
function that returns participant-level rows declares what it needs with
``@requires(PARTICIPANT_LEVEL)``; when the dashboard runs it as a signed-in user
(``acting_as``), a user without that permission gets ``AccessDenied`` instead of rows.
The dashboard also calls ``check`` before a cached lookup, because a cache hit never runs
the function.

Outside the dashboard (command line, notebooks) nobody is "acting": whoever can read the
store file can read everything anyway. Each dashboard page run turns ``enforce()`` on for its
own thread, after which a call with no user is refused too.

Roles (DESIGN: admin, director, clinician, grant_writer):
    admin         everything: users, imports, the audit log, every page
    director      every analytics page, the outreach list, data quality
    clinician     every analytics page and the outreach list
    grant_writer  published (suppressed) charts and the report only: no participant IDs,
                  no unsuppressed number
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from analytics.store import scope as read_scope

__all__ = ["ANALYTICS", "DATA_QUALITY", "IMPORT", "PARTICIPANT_LEVEL", "PERMISSIONS", "PUBLISHED", "ROLES",
           "NO_SITE", "SYSTEM", "USERS", "AccessDenied", "User", "acting_as", "allowed", "check", "current_user",
           "enforce", "requires", "scoped_sites", "set_user", "system_for"]

ROLES = ("admin", "director", "clinician", "grant_writer")
PARTICIPANT_LEVEL = "participant_level"  # rows about one participant (outreach list, IDs)
ANALYTICS = "analytics"  # unsuppressed aggregate numbers on the analytics pages
DATA_QUALITY = "data_quality"
PUBLISHED = "published"  # suppressed charts, tables and the report
IMPORT = "import"
USERS = "users"  # accounts and the audit log
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({PARTICIPANT_LEVEL, ANALYTICS, DATA_QUALITY, PUBLISHED, IMPORT, USERS}),
    "director": frozenset({PARTICIPANT_LEVEL, ANALYTICS, DATA_QUALITY, PUBLISHED}),
    "clinician": frozenset({PARTICIPANT_LEVEL, ANALYTICS, PUBLISHED}),
    "grant_writer": frozenset({PUBLISHED}),
}

STORE_WIDE = frozenset({IMPORT, USERS})  # about every site at once: not for a site-scoped account


class AccessDenied(PermissionError):
    """The signed-in user's role does not carry the permission the data needs."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    sites: tuple[str, ...] = ()  # the only sites this account may see; empty: every site

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles: {', '.join(ROLES)}")

    def may(self, permission: str) -> bool:
        """The role's permission; a site-scoped account never holds a store-wide one (imports and
        the accounts/audit page cover every site, and an account page could widen its own scope)."""
        if self.sites and permission in STORE_WIDE:
            return False
        return permission in PERMISSIONS[self.role]

    def scope(self) -> str:
        """The user's sites in plain words (the sidebar shows it)."""
        return ", ".join(self.sites) if self.sites else "all sites"


SYSTEM = User("system", "admin")  # our own code reading data to publish it protected (the report)


def system_for(user: User | None) -> User:
    """SYSTEM, kept to `user`'s sites: our own code reading for a site-scoped account."""
    return User(SYSTEM.name, SYSTEM.role, user.sites) if user is not None and user.sites else SYSTEM

_current: contextvars.ContextVar[User | None] = contextvars.ContextVar("outcomes_user", default=None)
_enforced: contextvars.ContextVar[bool] = contextvars.ContextVar("outcomes_enforced", default=False)


def enforce(on: bool = True) -> None:
    """From now on, in this thread's context, a protected call with no user acting is refused
    (each dashboard page run sets it; other threads and the command line are unaffected)."""
    _enforced.set(on)


def current_user() -> User | None:
    return _current.get()


def set_user(user: User | None) -> None:
    """Make `user` the one acting for the rest of this thread's work (a dashboard page run);
    the store reads only the user's sites from then on (analytics.store.scope)."""
    _current.set(user)
    read_scope.set_sites(user.sites if user else ())


@contextmanager
def acting_as(user: User | None) -> Iterator[None]:
    """Run the block as `user`: protected functions check this user's role."""
    token = _current.set(user)
    try:
        with read_scope.reading_sites(user.sites if user else ()):
            yield
    finally:
        _current.reset(token)


def allowed(user: User | None, permission: str) -> bool:
    if user is None:
        return not _enforced.get()
    return user.may(permission)


def check(permission: str | None, user: User | None = None) -> None:
    """Raise AccessDenied unless `user` (default: the one acting) has `permission`."""
    if permission is None:
        return
    user = user if user is not None else current_user()
    if not allowed(user, permission):
        who = f"{user.name} ({user.role})" if user else "nobody signed in"
        raise AccessDenied(f"{who} may not see {permission.replace('_', '-')} data")


F = TypeVar("F", bound=Callable[..., Any])


def requires(permission: str) -> Callable[[F], F]:
    """Declare (and check on every call) the permission a data function needs."""
    def wrap(func: F) -> F:
        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check(permission)
            return func(*args, **kwargs)
        checked.permission = permission  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]
    return wrap


# A site value no participant can have (control characters are refused at import): the scope
# of a site-scoped user who asked only for sites outside it, so the answer is nobody, never
# everybody (an empty site list means "no restriction").
NO_SITE = "\x00none"


def scoped_sites(asked: tuple[str, ...], user: User | None = None) -> tuple[str, ...]:
    """The sites a query may cover for `user` (default: the one acting): what was asked,
    narrowed to the user's sites. Filters.where calls it, so no filter or URL can widen a
    site-scoped account's view."""
    user = user if user is not None else current_user()
    if user is None or not user.sites:
        return asked
    if not asked:
        return user.sites
    narrowed = tuple(s for s in asked if s in user.sites)
    return narrowed or (NO_SITE,)


def permission_of(func: Callable) -> str | None:
    """The permission a function declared with @requires (None: anyone)."""
    return getattr(func, "permission", None)
