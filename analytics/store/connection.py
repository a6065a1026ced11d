"""The store: opening the database file, at the current schema version.

Only analytics/store/ touches the database: this module opens it, `session` runs
statements on a cursor, and the SQL every other module needs lives in
`analytics.store.queries`, so the DuckDB file can later be swapped for a server
engine without touching pages, CLI or statistics.

One connection per process; each query runs on its own cursor (a Session), so
Streamlit's session threads can share one Store.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analytics.settings import REPO_ROOT, SERVER_SCHEMES, STORE, store_target
from analytics.store import migrations
from analytics.store.session import DatabaseError, Params, Session, StoreError

__all__ = ["DB_ENV", "DEFAULT_DB", "REPO_ROOT", "DatabaseError", "Session", "Store", "StoreError", "resolve_path"]

DEFAULT_DB = REPO_ROOT / STORE.default
DB_ENV = STORE.env

# No extension may download at run time (no network); excel/httpfs are never needed.
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def is_server_url(target: object) -> bool:
    """A postgresql:// address names the server store; anything else is a DuckDB file."""
    return isinstance(target, str) and target.startswith(SERVER_SCHEMES)


def resolve_path(path: str | os.PathLike | None = None) -> Path | str:
    """The store: an explicit path or address, else $OUTCOMES_DB, else data/outcomes.duckdb.

    A postgresql:// address is returned as text (a Path would fold its '//')."""
    if path:
        return store_target(os.fspath(path))
    return STORE.from_env() or DEFAULT_DB


def in_use_message(target: object, exc: Exception) -> str:
    """Why a DuckDB file cannot be opened while another process holds it, and what to do."""
    holder = re.search(r"PID (\d+)", str(exc))
    who = f"another process (PID {holder.group(1)}, probably the dashboard)" if holder else "another process"
    return (f"{target} is in use by {who}. A DuckDB store can be open in one process at a time while it "
            "is written, even for reading. Stop the dashboard before running this command, or import "
            "through the dashboard's Data page, or use the server store for a team "
            "(OUTCOMES_DB=postgresql://..., see 'Running it for a team' in README.md).")


class Store:
    """A DuckDB file holding pseudonymous records, at the current schema version."""

    is_server = False  # the PostgreSQL store (server.ServerStore) says True

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, read_only: bool = False,
             memory: bool = False) -> Store:
        """Open (creating and migrating as needed) the store at `path`.

        A read-only open of a missing file or of an old schema is refused rather
        than silently creating or altering anything.
        """
        target = None if memory else resolve_path(path)
        if is_server_url(target):
            from analytics.store.server import ServerStore  # here: psycopg only for a server store

            return ServerStore.open(target)
        if target is not None and read_only and not target.exists():
            raise StoreError(f"no store at {target}")
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(":memory:" if target is None else str(target),
                                 read_only=read_only, config=dict(_CONFIG))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(in_use_message(target, exc)) from exc
            raise StoreError(f"cannot open {target}: {exc}") from exc
        store = cls(con, target, read_only)
        migrations.bring_up_to_date(store)
        return store

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> Session:
        """A fresh cursor for one read (thread-safe)."""
        return self.session()

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        return self.read().df(sql, params)

    def rows(self, sql: str, params: Params = None) -> list[tuple]:
        return self.read().rows(sql, params)

    def scalar(self, sql: str, params: Params = None) -> Any:
        return self.read().scalar(sql, params)

    def categorical_df(self, sql: str, params: Params = None) -> pd.DataFrame:
        return self.read().categorical_df(sql, params)

    def session(self) -> Session:
        """A cursor of its own: temp tables made on it stay visible to its later queries."""
        return Session(self._con.cursor(), self._write_lock)

    def transaction(self, *, commit: bool = True) -> AbstractContextManager[Session]:
        """One transaction on a fresh cursor (see Session.transaction)."""
        return self.session().transaction(commit=commit)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (after a big import)."""
        if not self.read_only:
            self._con.execute("CHECKPOINT")

    def data_version(self) -> tuple:
        """Changes whenever an import lands: a cache key for derived results."""
        return tuple(self.rows("SELECT count(*), coalesce(max(batch_id), 0) FROM import_batches")[0])
