"""Queries on one cursor (`Session`) and the errors the store raises.

DuckDB 2.0 streams results and an unread result holds its connection, so every
method here reads its result fully before returning. Apart from `connection`
(which opens the database) this is the only module that holds a driver object.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd

__all__ = ["DatabaseError", "Params", "Session", "StoreError"]

DatabaseError = duckdb.Error  # what a failed query raises, so callers need not import duckdb
Params = Sequence[Any] | dict | None


class StoreError(Exception):
    """The store cannot be opened or used (locked, newer schema, not a DuckDB file)."""


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

    # Writes to the import tables go through these three, so the server store can apply them
    # to PostgreSQL as well as to its DuckDB copy (analytics/store/server.py).

    def insert_select(self, table: str, columns: Sequence[str], select: str) -> None:
        """Insert the rows `select` yields (no parameters) into `table`'s `columns`."""
        self._run(f"INSERT INTO {table} ({', '.join(columns)}) {select}")

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert a few rows given as values."""
        marks = ", ".join("?" for _ in columns)
        for row in rows:
            self._run(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", list(row))

    def update_from(self, table: str, key: Sequence[str], columns: Sequence[str], select: str) -> None:
        """Set `columns` of the rows of `table` whose `key` matches a row of `select`."""
        sets = ", ".join(f"{c} = m.{c}" for c in columns)
        where = " AND ".join(f"{table}.{k} = m.{k}" for k in key)
        self._run(f"UPDATE {table} SET {sets} FROM ({select}) m WHERE {where}")

    def serialise(self, name: str) -> None:
        """Wait for other processes' transactions that took the same name (server store only:
        one DuckDB file has one writer at a time anyway)."""

    def execute(self, sql: str, params: Params = None) -> None:
        self._run(sql, params)

    def _run(self, sql: str, params: Params = None) -> None:
        """One statement on DuckDB, its result drained."""
        self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        # Drain any result so the cursor is free for the next statement.
        try:
            self._cur.fetchall()
        except duckdb.Error:
            pass

    def rows(self, sql: str, params: Params = None) -> list[tuple]:
        cur = self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        return cur.fetchall()

    def scalar(self, sql: str, params: Params = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        cur = self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        return cur.df()

    def categorical_df(self, sql: str, params: Params = None) -> pd.DataFrame:
        """A large result with text columns as pandas categoricals, through Arrow: several
        times faster than df() for millions of rows of repeated labels."""
        return self._cur.sql(sql, params=params).to_arrow_table().to_pandas(strings_to_categorical=True)
