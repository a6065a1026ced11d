"""The server store: PostgreSQL is the system of record, DuckDB the analytics engine.

Why: one DuckDB file lets one process write it at a time, so a team's dashboard processes,
nightly imports and CLI commands lock each other out. PostgreSQL lets them all work at once.
The analytics stay the same DuckDB SQL as in the embedded store: each process loads the
import tables from PostgreSQL into an in-process DuckDB (the mirror) once per data version,
a counter every import bumps, and runs its queries there.

Which engine runs a statement: a statement naming a live table (accounts, audit log, schema
version) runs on PostgreSQL, so a sign-in, a throttled attempt or an audit entry is seen by every
process at once; every other statement runs on the mirror. Writes to the import tables go
through Session.insert_select / insert_rows / update_from, which apply them to both.

A transaction that touches the import tables takes an advisory lock (imports run one at a
time across processes) and brings the mirror up to date under it before checking anything;
it commits on PostgreSQL first (all or nothing, also under kill -9), then on the mirror.

Site scoping (row-level security): the import tables carry a policy keyed on the connection's
setting `app.sites` (unset or empty: every site). A read while a site-scoped account acts
(analytics.store.scope) runs on a mirror loaded on a connection that set `app.sites` to the
account's sites, so PostgreSQL itself leaves other sites' rows out of it: a bug in a query of
the analytics layer cannot reach them. Imports run on connections that never set it.
"""

from __future__ import annotations

import queue
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import IsolationLevel
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from analytics.settings import PG_APP_ROLE
from analytics.store import migrations
from analytics.store.scope import current_sites
from analytics.store.connection import _CONFIG, Session, Store, StoreError
from analytics.store.schema import TABLES

LIVE_TABLES = ("users", "audit_log", "schema_version", "data_version",
               "dashboard_sessions", "session_keys", "sign_in_throttle",  # sessions and throttling: every process
               "disclosure_meta")  # the cell-key secret: one for every process, data version and scope
MIRRORED_TABLES = (*TABLES, "import_batches", "import_files")
SCOPED_TABLES = tuple(TABLES)  # participants (site) and the tables keyed by participant_id: row-level security
MAX_SCOPED_MIRRORS = 16  # mirrors of site-scoped accounts kept per process (each a part of the full one)
LOCKS = {"import": 150_001, "audit_log": 150_002, "migrate": 150_003}  # advisory-lock keys

_LIVE = re.compile(r"\b(?:" + "|".join(LIVE_TABLES) + r")\b", re.IGNORECASE)
_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+(\w+)", re.IGNORECASE)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|\$([A-Za-z_]\w*)|%")
_BLOCK = 1 << 20

Params = Sequence[Any] | dict | None


def pg_sql(sql: str) -> str:
    """DuckDB placeholders (? and $name) as psycopg's (%s and %(name)s); a literal % doubled."""
    def swap(m: re.Match) -> str:
        token = m.group(0)
        if token.startswith("'"):
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        return "%%" if token == "%" else f"%({m.group(1)})s"
    return _TOKEN.sub(swap, sql)


def display(url: str) -> str:
    """The address without its password, for messages and cache keys."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A connection whose dates read as YYYY-MM-DD (what the mirror's CSV reader expects)."""
    try:
        return psycopg.connect(url, autocommit=autocommit, options="-c DateStyle=ISO")
    except psycopg.Error as exc:
        raise StoreError(f"cannot reach the server store {display(url)}: {exc}".strip()) from exc


def live_connection(url: str) -> psycopg.Connection:
    """An autocommit connection for the live tables, which reads no row of the import tables
    (app.sites set to no site): a statement naming both a live and an import table runs on
    PostgreSQL, and must not bypass the mirror's scope."""
    conn = connect(url, autocommit=True)
    limit_to_sites(conn, [])
    return conn


def pg_rows(conn: psycopg.Connection, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of one statement on PostgreSQL."""
    with conn.cursor() as cur:
        cur.execute(pg_sql(sql) if params is not None else sql, params)
        if cur.description is None:
            return [], []
        return [d.name for d in cur.description], cur.fetchall()


class PgSession:
    """Statements on one PostgreSQL connection, with DuckDB-style placeholders (migrations use it)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = None) -> None:
        pg_rows(self.conn, sql, params)

    def rows(self, sql: str, params: Params = None) -> list[tuple]:
        return pg_rows(self.conn, sql, params)[1]

    def scalar(self, sql: str, params: Params = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        names, rows = pg_rows(self.conn, sql, params)
        return pd.DataFrame.from_records(rows, columns=names)


def current_version(conn: psycopg.Connection) -> int:
    return int(pg_rows(conn, "SELECT version FROM data_version")[1][0][0])


# ------------------------------------------------------------------ mirror ---

class Mirror:
    """The import tables at one data version, in an in-process DuckDB: every row, or (`sites`)
    only the rows PostgreSQL's row-level security lets those sites' accounts read."""

    def __init__(self, sites: tuple[str, ...] = ()) -> None:
        self.con = duckdb.connect(":memory:", config=dict(_CONFIG))
        self.version = -1
        self.sites = sites
        migrations.bring_up_to_date(Store(self.con, None, False))  # the very same tables

    @classmethod
    def load(cls, url: str, sites: tuple[str, ...] = ()) -> Mirror:
        """The current data version from one consistent snapshot, read under `sites`' scope."""
        mirror = cls(sites)
        with connect(url) as conn:
            conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
            if sites:
                limit_to_sites(conn, sites)
            mirror.version = current_version(conn)
            load_tables(conn, mirror.con.cursor())
        if sites:
            mirror.check_scope()
        return mirror

    def check_scope(self) -> None:
        """Refuse a scoped mirror holding another site's row (row-level security missing or
        bypassed, say a connection of load_tables' own that did not set the scope)."""
        cur = self.con.cursor()
        stray = cur.execute("SELECT count(*) FROM participants WHERE site IS NULL OR NOT list_contains(?, site)",
                            [list(self.sites)]).fetchone()[0]
        for table in SCOPED_TABLES[1:]:
            stray += cur.execute(f"SELECT count(*) FROM {table} WHERE participant_id NOT IN "
                                 "(SELECT participant_id FROM participants)").fetchone()[0]
        if stray:
            raise StoreError("the server store returned rows outside a site-scoped account's sites: "
                             "row-level security is not in force (run any command once as the database's owner)")


def limit_to_sites(conn: psycopg.Connection, sites: Sequence[str]) -> None:
    """Set this connection's `app.sites` (a text[] literal, quoted by PostgreSQL itself), which the
    row-level security policies read: from now on it reads only those sites' rows and writes none."""
    pg_rows(conn, "SELECT set_config('app.sites', (?::text[])::text, false)", [list(sites)])


def load_tables(conn: psycopg.Connection, cur: duckdb.DuckDBPyConnection) -> None:
    """Replace the mirror's import tables with PostgreSQL's, as Arrow (ADBC reads binary COPY).

    The caller holds a consistent view: a REPEATABLE READ snapshot or the import lock. The
    tables are read in parts (block ranges) by LOAD_READERS connections at once, each on the
    caller's snapshot and with its scope (READER_SETTINGS, role), and inserted here in order:
    the same rows as one read on `conn`, typed exactly (no text round trip). At 100k
    participants: 8.4-9.4 CPU seconds (ours and PostgreSQL's) where CSV COPY took 14.5-17.1
    (benchmarks/bench_server.py prints it per table).
    """
    view = _View.of(conn)
    parts = [(table, select) for table in MIRRORED_TABLES for select in _parts(conn, cur, table)]
    with _Readers(view, min(LOAD_READERS, len(parts))) as readers, \
            ThreadPoolExecutor(readers.count, thread_name_prefix="mirror-load") as pool:
        fetched = [pool.submit(readers.fetch, select) for _, select in parts]
        emptied: set[str] = set()
        for (table, _), arrow in zip(parts, fetched):
            if table not in emptied:
                cur.execute(f"DELETE FROM {table}")
                emptied.add(table)
            _insert_arrow(cur, table, arrow.result())


LOAD_READERS = 2  # PostgreSQL connections reading the tables at once (one per core of a small server)
READER_SETTINGS = ("app.sites",)  # session settings the row-level security policies read: readers copy them
_PART_BLOCKS = 4096  # 32 MB of table per read: a big table is read in parts, in parallel


@dataclass(frozen=True)
class _View:
    """What a reader connection needs to see exactly what the caller's connection sees."""

    dsn: str
    snapshot: str
    role: str | None  # SET ROLE, if the caller switched roles
    settings: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, conn: psycopg.Connection) -> _View:
        rows = pg_rows(conn, "SELECT pg_export_snapshot(), nullif(current_user, session_user), "
                             + ", ".join("current_setting(?, true)" for _ in READER_SETTINGS), list(READER_SETTINGS))
        snapshot, role, *values = rows[1][0]
        dsn = make_conninfo(conn.info.dsn, password=conn.info.password) if conn.info.password else conn.info.dsn
        return cls(dsn, snapshot, role, tuple((k, v) for k, v in zip(READER_SETTINGS, values) if v is not None))


def _parts(conn: psycopg.Connection, cur: duckdb.DuckDBPyConnection, table: str,
           part_blocks: int | None = None) -> list[str]:
    """SELECTs that together read every visible row of `table` once, in physical order (TID ranges
    of `part_blocks` blocks)."""
    columns = [c for (c,) in cur.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
                                         [table]).fetchall()]
    blocks = pg_rows(conn, "SELECT pg_relation_size(?::regclass) / current_setting('block_size')::int", [table])[1][0][0]
    starts = range(0, max(int(blocks), 1), part_blocks or _PART_BLOCKS)
    ends = [*(f" AND ctid < '({s},0)'" for s in starts[1:]), ""]  # the last part is open-ended
    select = f"SELECT {', '.join(columns)} FROM {table}"
    if len(starts) == 1:
        return [select]
    return [f"{select} WHERE ctid >= '({s},0)'{end}" for s, end in zip(starts, ends)]


class _Readers:
    """Reader connections in one REPEATABLE READ READ ONLY transaction each, on the caller's view."""

    def __init__(self, view: _View, count: int) -> None:
        self.view, self.count = view, count
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._open: list[adbc.Connection] = []

    def __enter__(self) -> _Readers:
        try:
            for _ in range(self.count):
                self._idle.put(self._connect())
        except BaseException:
            self.__exit__()
            raise
        return self

    def _connect(self) -> adbc.Connection:
        try:
            reader = adbc.connect(self.view.dsn, autocommit=True)
        except adbc.Error as exc:
            raise StoreError(f"cannot reach the server store to load the mirror: {exc}".strip()) from exc
        self._open.append(reader)
        with reader.cursor() as c:
            c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            c.execute(f"SET TRANSACTION SNAPSHOT {_literal(self.view.snapshot)}")  # no parameters here
            if self.view.role:
                c.execute(f"SET ROLE {_literal(self.view.role)}")
            for name, value in self.view.settings:
                c.execute("SELECT set_config($1, $2, true)", (name, value))
        return reader

    def fetch(self, select: str) -> pa.Table:
        reader = self._idle.get()
        try:
            with reader.cursor() as c:
                c.execute(select)
                return c.fetch_arrow_table()
        finally:
            self._idle.put(reader)

    def __exit__(self, *exc: object) -> None:
        for reader in self._open:
            reader.close()  # a read-only transaction: closing ends it


def _literal(text: str) -> str:
    """A quoted SQL string literal, for the statements that take no parameters."""
    return "'" + text.replace("'", "''") + "'"


def _insert_arrow(cur: duckdb.DuckDBPyConnection, table: str, arrow: pa.Table) -> None:
    """Append an Arrow table to a mirror table (DuckDB scans it in place)."""
    if not arrow.num_rows:
        return
    cur.register("_incoming", arrow)
    try:
        cur.execute(f"INSERT INTO {table} SELECT * FROM _incoming")
    finally:
        cur.unregister("_incoming")


# ----------------------------------------------------------------- session ---

class ServerSession(Session):
    """A Session whose statements run on the mirror or on PostgreSQL (see the module's doc)."""

    def __init__(self, store: ServerStore) -> None:
        super().__init__(None, store._write_lock)  # the mirror cursor comes with the first mirror statement
        self._store = store
        self._mirror: Mirror | None = None  # chosen by the scope at the first mirror statement
        self._pg: psycopg.Connection | None = None  # the transaction's connection
        self._in_mirror_tx = False
        self._wrote = False
        self._version_after: int | None = None

    # routing

    def execute(self, sql: str, params: Params = None) -> None:
        if _LIVE.search(sql):
            pg_rows(self._live(), sql, params)
            return
        self._refuse_direct_write(sql)
        self._on_mirror()
        self._run(sql, params)

    def rows(self, sql: str, params: Params = None) -> list[tuple]:
        if _LIVE.search(sql):
            return pg_rows(self._live(), sql, params)[1]
        self._on_mirror()
        return super().rows(sql, params)

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        if _LIVE.search(sql):
            names, rows = pg_rows(self._live(), sql, params)
            return pd.DataFrame.from_records(rows, columns=names)
        self._on_mirror()
        return super().df(sql, params)

    def categorical_df(self, sql: str, params: Params = None) -> pd.DataFrame:
        self._on_mirror()
        return super().categorical_df(sql, params)

    def serialise(self, name: str) -> None:
        pg_rows(self._live(), "SELECT pg_advisory_xact_lock(?)", [LOCKS[name]])

    def _live(self) -> psycopg.Connection:
        return self._pg if self._pg is not None else self._store.shared_connection()

    @staticmethod
    def _refuse_direct_write(sql: str) -> None:
        found = _WRITE.match(sql)
        if found and found.group(1).lower() in MIRRORED_TABLES:
            raise StoreError(f"write {found.group(1)} through Session.insert_select/insert_rows/update_from, "
                             "so the server store writes PostgreSQL too")

    def _on_mirror(self) -> None:
        """Attach to the mirror of the acting account's sites; inside a transaction, take the import
        lock and catch up first (a site-scoped mirror: no import lock, it never writes the import tables)."""
        if self._mirror is None:
            self._mirror = self._store.mirror(current_sites())
            self._cur = self._mirror.con.cursor()
        if self._pg is None or self._in_mirror_tx:
            return
        self._write_lock.acquire()
        self._in_mirror_tx = True
        self._cur.execute("BEGIN TRANSACTION")
        if self._mirror.sites:
            return
        pg_rows(self._pg, "SELECT pg_advisory_xact_lock(?)", [LOCKS["import"]])
        self._version_after = current_version(self._pg)
        if self._version_after != self._mirror.version:  # another process imported meanwhile
            load_tables(self._pg, self._cur)

    # writes to the import tables: PostgreSQL first, then the mirror

    def insert_select(self, table: str, columns: Sequence[str], select: str) -> None:
        self._start_write()
        if table not in SCOPED_TABLES:
            with self._spilled(f"SELECT * FROM ({select})") as path:
                self._copy_in(table, columns, path)
        else:  # PostgreSQL refuses COPY FROM into a table under row-level security: through a temp table
            staged, names = f"_new_{table}", ", ".join(columns)
            pg_rows(self._pg, f"CREATE TEMP TABLE {staged} AS SELECT {names} FROM {table} LIMIT 0")
            with self._spilled(f"SELECT * FROM ({select})") as path:
                self._copy_in(staged, columns, path)
            pg_rows(self._pg, f"INSERT INTO {table} ({names}) SELECT {names} FROM {staged}")
            pg_rows(self._pg, f"DROP TABLE {staged}")
        super().insert_select(table, columns, select)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._start_write()
        marks = ", ".join("?" for _ in columns)
        for row in rows:
            pg_rows(self._pg, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", list(row))
        super().insert_rows(table, columns, rows)

    def update_from(self, table: str, key: Sequence[str], columns: Sequence[str], select: str) -> None:
        self._start_write()
        changed = f"_changed_{table}"
        pg_rows(self._pg, f"CREATE TEMP TABLE {changed} AS SELECT {', '.join([*key, *columns])} "
                          f"FROM {table} LIMIT 0")
        with self._spilled(f"SELECT {', '.join([*key, *columns])} FROM ({select})") as path:
            self._copy_in(changed, [*key, *columns], path)
        sets = ", ".join(f"{c} = m.{c}" for c in columns)
        where = " AND ".join(f"{table}.{k} = m.{k}" for k in key)
        pg_rows(self._pg, f"UPDATE {table} SET {sets} FROM {changed} m WHERE {where}")
        pg_rows(self._pg, f"DROP TABLE {changed}")
        super().update_from(table, key, columns, select)

    def _start_write(self) -> None:
        if self._pg is None:
            raise StoreError("writes to the import tables need a transaction (store.transaction())")
        self._on_mirror()
        if self._mirror.sites:
            raise StoreError("a site-scoped account cannot write the import tables (imports see every site)")
        self._wrote = True

    @contextmanager
    def _spilled(self, select: str) -> Iterator[Path]:
        """The rows of a mirror query as a CSV file (NULL empty, an empty text quoted)."""
        with tempfile.TemporaryDirectory(prefix="outcomes-write-") as tmp:
            path = Path(tmp) / "rows.csv"
            self._cur.execute(f"COPY ({select}) TO '{path.as_posix()}' (FORMAT csv, HEADER false)")
            yield path

    def _copy_in(self, table: str, columns: Sequence[str], path: Path) -> None:
        with open(path, "rb") as rows, self._pg.cursor() as cur, \
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
            while block := rows.read(_BLOCK):
                copy.write(block)

    # transactions

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Session]:
        """One transaction on PostgreSQL (and on the mirror if it touches the import tables)."""
        self._pg = connect(self._store.url)
        if current_sites():  # a site-scoped account's transaction reads its sites only on PostgreSQL too
            limit_to_sites(self._pg, current_sites())
        self.discarded, self._wrote = False, False
        try:
            try:
                yield self
            except BaseException:
                self._finish(False)
                raise
            self._finish(commit and not self.discarded)
        finally:
            self._pg.close()
            self._pg = None

    def _finish(self, commit: bool) -> None:
        try:
            if commit and self._wrote:
                self._version_after = int(pg_rows(
                    self._pg, "UPDATE data_version SET version = version + 1 RETURNING version")[1][0][0])
            self._pg.commit() if commit else self._pg.rollback()
        except BaseException:
            commit = False
            raise
        finally:
            if self._in_mirror_tx:
                self._cur.execute("COMMIT" if commit else "ROLLBACK")
                if commit and not self._mirror.sites:
                    self._mirror.version = self._version_after
                self._in_mirror_tx = False
                self._write_lock.release()


# ------------------------------------------------------------------- store ---

class ServerStore(Store):
    """The store on a PostgreSQL server (OUTCOMES_DB=postgresql://user@host:5432/dbname)."""

    is_server = True

    def __init__(self, url: str) -> None:  # noqa: super().__init__ wants a DuckDB connection
        self.url = url
        self.path = display(url)
        self.read_only = False
        self._write_lock = threading.Lock()
        self._mirror_lock = threading.Lock()
        self._mirrors: dict[tuple[str, ...], Mirror] = {}  # by sites (() the full one), all at one version
        self._shared = live_connection(url)

    @classmethod
    def open(cls, url: str, **_: Any) -> ServerStore:  # type: ignore[override]
        """Connect, creating or upgrading the tables (under a lock) when this role may."""
        store = cls(url)
        store.migrate()
        return store

    def migrate(self) -> None:
        with connect(self.url) as conn:
            pg_rows(conn, "SELECT pg_advisory_xact_lock(?)", [LOCKS["migrate"]])
            db = PgSession(conn)
            version = migrations.stored_version(db)
            if version > migrations.CURRENT_VERSION:
                raise migrations.newer_error(self.path, version)
            if version == migrations.CURRENT_VERSION and setup_in_force(db):
                return
            try:
                migrations.apply(db, version, migrations.CURRENT_VERSION)
                server_setup(db, PG_APP_ROLE.value() or None)
            except psycopg.errors.InsufficientPrivilege as exc:
                what = (f"its tables created or upgraded (schema version {version})"
                        if version < migrations.CURRENT_VERSION
                        else "its server setup (row-level security, cell-key secret)")
                raise StoreError(f"{self.path} needs {what}: run any command once as the database's owner. "
                                 + str(exc).strip()) from exc

    def shared_connection(self) -> psycopg.Connection:
        """The process's autocommit connection for short reads of the live tables."""
        if self._shared.closed or self._shared.broken:
            self._shared = live_connection(self.url)
        return self._shared

    def mirror(self, sites: Sequence[str] = ()) -> Mirror:
        """The mirror of `sites` (empty: every site) at the current data version, loaded from
        PostgreSQL when an import landed; kept per (data version, sites)."""
        key = tuple(sorted(set(sites)))
        version = current_version(self.shared_connection())
        with self._mirror_lock:
            mirror = self._mirrors.get(key)
            if mirror is None or mirror.version != version:
                mirror = Mirror.load(self.url, key)
                kept = {k: m for k, m in self._mirrors.items() if m.version == mirror.version and k != key}
                scoped = [k for k in kept if k]
                for old in scoped[:max(0, len(scoped) - MAX_SCOPED_MIRRORS + 1)]:  # the oldest loaded go
                    del kept[old]
                self._mirrors = {**kept, key: mirror}
            return mirror

    def close(self) -> None:
        self._shared.close()

    def read(self) -> ServerSession:
        return ServerSession(self)

    def session(self) -> ServerSession:
        return ServerSession(self)

    def checkpoint(self) -> None:
        """PostgreSQL needs no checkpoint from us."""

    def data_version(self) -> tuple:
        return (current_version(self.shared_connection()),)


def setup_in_force(db: PgSession) -> bool:
    """Whether every import table has row-level security enabled and forced, and the cell-key
    secret is there (a store set up by an older release has not: the owner's next command adds them)."""
    secured = db.scalar("SELECT count(*) FROM pg_class WHERE relname::text = ANY(?) AND relrowsecurity "
                        "AND relforcerowsecurity AND relnamespace = current_schema()::regnamespace",
                        [list(SCOPED_TABLES)])
    return secured == len(SCOPED_TABLES) and db.scalar("SELECT to_regclass('disclosure_meta') IS NOT NULL")


# Who may read a row: every row on a connection that did not set app.sites (unscoped accounts,
# imports, the CLI); on one that did, the rows of those sites' participants only.
_SITES = "(SELECT outcomes_sites())"  # a sub-select: PostgreSQL reads the setting once per query
_UNSCOPED = f"{_SITES} IS NULL"
_VISIBLE = {"participants": f"{_UNSCOPED} OR site = ANY ({_SITES}::text[])",
            **{t: f"{_UNSCOPED} OR participant_id IN (SELECT participant_id FROM participants "
                  f"WHERE site = ANY ({_SITES}::text[]))" for t in SCOPED_TABLES[1:]}}


def row_security(db: PgSession) -> None:
    """Policies on the import tables keyed on the connection's app.sites, forced so that the
    tables' owner is subject to them too (only a superuser or a BYPASSRLS role is not).
    A scoped connection writes nothing (WITH CHECK unscoped)."""
    db.execute("""CREATE OR REPLACE FUNCTION outcomes_sites() RETURNS text[] LANGUAGE sql STABLE AS
                  $$ SELECT nullif(current_setting('app.sites', true), '')::text[] $$""")
    for table in SCOPED_TABLES:
        db.execute(f"DROP POLICY IF EXISTS site_scope ON {table}")
        db.execute(f"CREATE POLICY site_scope ON {table} USING ({_VISIBLE[table]}) WITH CHECK ({_UNSCOPED})")
        db.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        db.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def server_setup(db: PgSession, app_role: str | None) -> None:
    """What only the server store has: the data-version counter, an audit log the database
    keeps append-only, row-level security by site on the import tables, and the application
    role's grants (no UPDATE or DELETE on the log)."""
    db.execute("CREATE TABLE IF NOT EXISTS data_version (version BIGINT NOT NULL)")
    db.execute("INSERT INTO data_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM data_version)")
    db.execute("""CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP; END $$""")
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
    db.execute("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
               "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    db.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    db.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC")
    row_security(db)
    db.execute("CREATE TABLE IF NOT EXISTS disclosure_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    db.execute("INSERT INTO disclosure_meta VALUES ('cell_key_secret', ?) ON CONFLICT (name) DO NOTHING",
               [secrets.token_hex(32)])
    if app_role:
        role = pgsql.Identifier(app_role).as_string(db.conn)
        db.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(MIRRORED_TABLES)}, users, data_version TO {role}")
        db.execute(f"GRANT SELECT, INSERT ON audit_log TO {role}")
        db.execute(f"GRANT SELECT ON schema_version, disclosure_meta TO {role}")
        db.execute(f"GRANT SELECT, INSERT, UPDATE ON dashboard_sessions TO {role}")
        db.execute(f"GRANT SELECT ON session_keys TO {role}")
        db.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON sign_in_throttle TO {role}")
