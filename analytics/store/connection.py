"""The store: the one module that touches the database.

Everything else asks this module for data, so the DuckDB file can later be
swapped for a server engine without touching pages, CLI or statistics.

DuckDB 2.0 streams results and an unread result holds its connection, so every
helper here reads its result fully before returning. One connection per
process; each query runs on its own cursor, so Streamlit's session threads can
share one Store.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analytics.settings import REPO_ROOT, STORE
from analytics.store.schema import EARLIEST_DATE, Table

DEFAULT_DB = REPO_ROOT / STORE.default
DB_ENV = STORE.env

# No extension may download at run time (no network); excel/httpfs are never needed.
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


DatabaseError = duckdb.Error  # what a failed query raises, so callers need not import duckdb


class StoreError(Exception):
    """The store cannot be opened or used (locked, newer schema, not a DuckDB file)."""


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The store's file: an explicit path, else $OUTCOMES_DB, else data/outcomes.duckdb."""
    if path:
        return Path(path)
    return STORE.from_env() or DEFAULT_DB


class Session:
    """Queries on one cursor. Used for a single read, or for a whole transaction."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, write_lock: threading.Lock) -> None:
        self._cur = cursor
        self._write_lock = write_lock
        self.discarded = False

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Session]:
        """One transaction: all of it lands, or none (rolled back on error or discard()).

        commit=False always rolls back: a dry run that sees exactly what a real run would.
        Writers take the store's lock, so one process never runs two write transactions.
        """
        with self._write_lock:
            self._cur.execute("BEGIN TRANSACTION")
            self.discarded = False
            try:
                yield self
            except BaseException:
                self._cur.execute("ROLLBACK")
                raise
            self._cur.execute("COMMIT" if commit and not self.discarded else "ROLLBACK")

    def discard(self) -> None:
        """Roll the surrounding transaction back at its end instead of committing."""
        self.discarded = True

    def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> None:
        self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        # Drain any result so the cursor is free for the next statement.
        try:
            self._cur.fetchall()
        except duckdb.Error:
            pass

    def rows(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        cur = self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        return cur.fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        cur = self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        return cur.df()

    def categorical_df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        """A large result with text columns as pandas categoricals, through Arrow: several
        times faster than df() for millions of rows of repeated labels."""
        return self._cur.sql(sql, params=params).to_arrow_table().to_pandas(strings_to_categorical=True)


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
        from analytics.store import migrations  # here, not at the top: migrations uses Session

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

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        return self.read().df(sql, params)

    def rows(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        return self.read().rows(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        return self.read().scalar(sql, params)

    def categorical_df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
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


def table_ddl(table: Table, *, primary_key: bool) -> str:
    """CREATE TABLE for an import table, with CHECKs that mirror the import rules."""
    lines = []
    for col in table.columns:
        parts = [col.name, col.type]
        if col.required:
            parts.append("NOT NULL")
        checks = []
        if col.allowed:
            checks.append(f"{col.name} IN ({', '.join(repr(v) for v in col.allowed)})")
        if col.low is not None:
            checks.append(f"{col.name} >= {col.low}")
        if col.high is not None:
            checks.append(f"{col.name} <= {col.high}")
        if col.type == "DATE":
            checks.append(f"{col.name} >= DATE '{EARLIEST_DATE}'")
        if checks:
            parts.append(f"CHECK ({' AND '.join(checks)})")
        lines.append("    " + " ".join(parts))
    if table.name == "participants":
        lines.append("    CHECK ((exited_on IS NULL) = (exit_reason IS NULL))")
        lines.append("    CHECK (exited_on IS NULL OR exited_on >= enrolled_on)")
    lines += [f"    CHECK ({check})" for check in table.checks]
    if primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.key)})")
    return f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n)"
