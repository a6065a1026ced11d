"""Every setting, declared once: its name, environment variable, default, type and help text.

The CLI (option defaults and help), the pages and the library read their defaults from
here, so a default is written in one place; the README's Settings table documents each
one (tests/test_settings.py checks both). Environment variables are read when a value is
asked for, never written. The threshold and the inactivity days are chosen per analysis
(CLI options, page controls), so they have no environment variable.

This module imports only the standard library: the CLI reads it before any command runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["BROWSER_PATH", "IDLE_MINUTES", "INACTIVITY_DAYS", "LOCKOUT_MINUTES", "MAX_FAILED_SIGN_INS",
           "PG_APP_ROLE", "REPO_ROOT", "SESSION_HOURS", "SETTINGS", "STORE", "THRESHOLD", "Setting",
           "SERVER_SCHEMES", "store_target"]

T = TypeVar("T", int, float, str, Path)

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting. `value()` is the environment's value when set (checked), else the default."""

    name: str
    env: str | None          # the environment variable, or None when chosen per call (CLI option, page)
    default: T
    type: Callable[[str], T]
    help: str
    minimum: float | None = None  # inclusive
    cli: str | None = None   # the CLI option that overrides it, if any

    def from_env(self) -> T | None:
        """The environment's value, checked; None when the variable is unset or empty."""
        raw = os.environ.get(self.env) if self.env else None
        if raw is None or not raw.strip():
            return None
        try:
            value = self.type(raw.strip())
        except ValueError:
            raise ValueError(f"{self.env} must be {_KIND.get(self.type, 'a value')}, not {raw!r}") from None
        return self.check(value, self.env)

    def value(self) -> T:
        """The environment's value when set, else the default."""
        found = self.from_env()
        return self.default if found is None else found

    def check(self, value: T, what: str | None = None) -> T:
        """`value` if it is at least the minimum; else ValueError naming `what` (default: the name)."""
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise ValueError(f"{what or self.name} must be at least {self.minimum:g}, got {value}")
        return value

    def shown_default(self) -> str:
        """The default as the README and help texts write it."""
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


_KIND: dict[Callable, str] = {int: "a whole number", float: "a number", Path: "a path", str: "text"}

SERVER_SCHEMES = ("postgresql://", "postgres://")


def store_target(text: str) -> Path | str:
    """A DuckDB file, or a postgresql:// address naming the server store (kept as text: a Path
    would fold its '//')."""
    return text if text.startswith(SERVER_SCHEMES) else Path(text)


STORE: Setting[Path] = Setting(
    "store", "OUTCOMES_DB", Path("data/outcomes.duckdb"), store_target,
    "the store: a DuckDB file, or postgresql://user@host:5432/dbname for the server store (README, "
    "'Running it for a team'); a relative default is under the repository, a relative variable under "
    "the current folder", cli="--db")
THRESHOLD: Setting[int] = Setting(
    "threshold", None, 11, int,
    "counts from 1 to threshold-1 are suppressed in everything published; lower values are refused",
    minimum=11, cli="--threshold")
INACTIVITY_DAYS: Setting[int] = Setting(
    "inactivity_days", None, 30, int,
    "days without engagement after which a participant with no recorded exit has left",
    minimum=1, cli="--inactivity-days")
IDLE_MINUTES: Setting[float] = Setting(
    "idle_minutes", "OUTCOMES_IDLE_MINUTES", 30.0, float,
    "minutes without activity after which a dashboard session ends", minimum=0)
SESSION_HOURS: Setting[float] = Setting(
    "session_hours", "OUTCOMES_SESSION_HOURS", 12.0, float,
    "hours after signing in at which a dashboard session ends", minimum=0)
MAX_FAILED_SIGN_INS: Setting[int] = Setting(
    "max_failed_sign_ins", "OUTCOMES_MAX_FAILED_SIGN_INS", 5, int,
    "failed sign-ins of one user name from one client before each further attempt waits a growing delay (4x as many from all clients)", minimum=1)
LOCKOUT_MINUTES: Setting[float] = Setting(
    "lockout_minutes", "OUTCOMES_LOCKOUT_MINUTES", 15.0, float,
    "the longest wait between sign-in attempts once delays have begun (1 s, 2 s, 4 s, ... up to this)", minimum=0)
BROWSER_PATH: Setting[str] = Setting(
    "browser_path", "BROWSER_PATH", "/usr/bin/chromium", str,
    "the Chrome/Chromium that draws chart images (PNG, SVG, PDF); when unset and the default is "
    "missing, kaleido looks for one")

DEMO: Setting[int] = Setting(
    "demo", "OUTCOMES_DEMO", 0, int,
    "1: build the open demo from the bundled sample at OUTCOMES_DB when that file is missing (the "
    "default store is always built); 0: a missing store elsewhere is refused with 'no store at PATH'",
    minimum=0)
PG_APP_ROLE: Setting[str] = Setting(
    "pg_app_role", "OUTCOMES_PG_APP_ROLE", "", str,
    "server store only: the PostgreSQL role the dashboard and CLI connect as, granted its rights "
    "(no UPDATE or DELETE on the audit log) when the owner creates or upgrades the tables")

SETTINGS: tuple[Setting, ...] = (STORE, THRESHOLD, INACTIVITY_DAYS, IDLE_MINUTES, SESSION_HOURS,
                                 MAX_FAILED_SIGN_INS, LOCKOUT_MINUTES, BROWSER_PATH, DEMO, PG_APP_ROLE)
