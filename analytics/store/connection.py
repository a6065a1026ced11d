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
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analytics.settings import REPO_ROOT, STORE
from analytics.store import migrations
from analytics.store.session import DatabaseError, Params, Session, StoreError

__all__ = ["DB_ENV", "DEFAULT_DB", "REPO_ROOT", "DatabaseError", "Session", "Store", "StoreError", "resolve_path"]

DEFAULT_DB = REPO_ROOT / STORE.default
DB_ENV = STORE.env

# No extension may download at run time (no network); excel/httpfs are never needed.
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The store's file: an explicit path, else $OUTCOMES_DB, else data/outcomes.duckdb."""
    if path:
        return Path(path)
    return STORE.from_env() or DEFAULT_DB


class Store:
    """A DuckDB file holding pseudonymous records, at the current schema version."""

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
        if target is not None and read_only and not target.exists():
            raise StoreError(f"no store at {target}")
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(":memory:" if target is None else str(target),
                                 read_only=read_only, config=dict(_CONFIG))
        except duckdb.IOException as exc:
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
