"""Schema versions and the steps between them.

A store records its schema version; opening it runs every later step in one
transaction, so a store made by an older release opens (and is upgraded)
while a store from a newer release is refused instead of being damaged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from analytics.store.ddl import table_ddl
from analytics.store.schema import ACTIVITY_TABLES, ASSESSMENTS, PARTICIPANTS
from analytics.store.session import Session, StoreError


class Migratable(Protocol):
    """What bring_up_to_date needs of a store (analytics.store.connection.Store has it);
    a protocol, so this module does not import the connection module that calls it."""

    path: Path | None
    read_only: bool

    def read(self) -> Session: ...

    def transaction(self) -> AbstractContextManager[Session]: ...


def _v1(db: Session) -> None:
    """Import tables and the import log.

    Activity tables declare their key in importformat and the importer enforces
    it; they carry no ART primary-key index, which would cost 4x the import time
    of a 10M-row file (see benchmarks/bench_import.py).
    """
    db.execute(table_ddl(PARTICIPANTS, primary_key=True))
    for table in ACTIVITY_TABLES:
        db.execute(table_ddl(table, primary_key=False))
    db.execute("""
        CREATE TABLE import_batches (
            batch_id INTEGER NOT NULL,
            imported_at TIMESTAMP NOT NULL,
            file_count INTEGER NOT NULL
        )""")
    db.execute("""
        CREATE TABLE import_files (
            batch_id INTEGER NOT NULL,
            file_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            rows_new BIGINT NOT NULL,
            rows_updated BIGINT NOT NULL,
            rows_unchanged BIGINT NOT NULL
        )""")


def _v2(db: Session) -> None:
    """Record where a batch came from, so the bundled sample can be told from real data."""
    db.execute("ALTER TABLE import_batches ADD COLUMN source VARCHAR DEFAULT 'user'")
    db.execute("UPDATE import_batches SET source = 'user' WHERE source IS NULL")


def _v3(db: Session) -> None:
    """The audit log: who exported, reported, imported or viewed what, and when.

    Append-only by convention: only analytics.access.audit writes to it and it only inserts.
    """
    db.execute("""
        CREATE TABLE audit_log (
            seq BIGINT NOT NULL,
            logged_at TIMESTAMP NOT NULL,
            user_name VARCHAR,
            action VARCHAR NOT NULL,
            what VARCHAR NOT NULL,
            details VARCHAR
        )""")


def _v4(db: Session) -> None:
    """Accounts for signing in to the dashboard (analytics.access.users): a role each, an argon2
    password hash (never the password), and the state of failed sign-ins and lock-out."""
    db.execute("""
        CREATE TABLE users (
            user_name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL CHECK (role IN ('admin', 'director', 'clinician', 'grant_writer')),
            password_hash VARCHAR,
            disabled BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL,
            failed_sign_ins INTEGER NOT NULL DEFAULT 0,
            locked_until TIMESTAMP,
            last_sign_in TIMESTAMP
        )""")


def _v5(db: Session) -> None:
    """Import format 1.1: recovery-capital assessments (issue 14). Like the activity tables,
    the key is enforced by the importer, not by an index."""
    db.execute(table_ddl(ASSESSMENTS, primary_key=False))


def _v6(db: Session) -> None:
    """Audit entries carry a hash chain (issue 15), so an edit of the log is detectable;
    the entries already there are chained in order."""
    from analytics.store.queries import audit as q

    db.execute("ALTER TABLE audit_log ADD COLUMN entry_hash VARCHAR")
    previous = None
    for seq, logged_at, user, action, what, details, _ in q.chain(db):
        previous = q.entry_hash(previous, seq, logged_at, user, action, what, details)
        q.set_hash(db, seq, previous)


def _v7(db: Session) -> None:
    """Sessions that survive a reload, site-scoped accounts and sign-in throttling (issue 15).

    `dashboard_sessions` holds the server side of a signed session token (the SHA-256 of its random id,
    never the id), so signing out or a timeout ends the session in every tab; `session_keys`
    holds the key that signs tokens, made here once per store. `users.sites` lists the sites an
    account may see (NULL: all). `sign_in_throttle` counts failed sign-ins per user name and
    client (and per name over all clients, client '*') for growing delays instead of a lock.
    """
    db.execute("ALTER TABLE users ADD COLUMN sites VARCHAR[]")
    db.execute("""
        CREATE TABLE dashboard_sessions (
            id_hash VARCHAR PRIMARY KEY,
            user_name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_seen TIMESTAMP NOT NULL,
            ended_at TIMESTAMP,
            end_reason VARCHAR
        )""")
    db.execute("CREATE TABLE session_keys (created_at TIMESTAMP NOT NULL, key VARCHAR NOT NULL)")
    db.execute("INSERT INTO session_keys VALUES (now(), ?)", [secrets.token_hex(32)])
    db.execute("""
        CREATE TABLE sign_in_throttle (
            user_name VARCHAR NOT NULL,
            client VARCHAR NOT NULL,
            failures INTEGER NOT NULL,
            last_failed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (user_name, client)
        )""")


def _v8(db: Session) -> None:
    """The cell-key secret of disclosure control (issue 12, analytics.publish.cellkey): made here once
    per store, so every output of a store perturbs the same cell alike. IF NOT EXISTS: a store opened
    by a development build made the table on first use, with a secret its outputs already used."""
    db.execute("CREATE TABLE IF NOT EXISTS disclosure_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    db.execute("INSERT INTO disclosure_meta SELECT 'cell_key_secret', ? WHERE NOT EXISTS "
               "(SELECT 1 FROM disclosure_meta WHERE name = 'cell_key_secret')", [secrets.token_hex(32)])


MIGRATIONS: list[tuple[int, Callable[[Session], None]]] = [
    (1, _v1), (2, _v2), (3, _v3), (4, _v4), (5, _v5), (6, _v6), (7, _v7), (8, _v8)]
CURRENT_VERSION = MIGRATIONS[-1][0]


def stored_version(db: Session) -> int:
    """The schema version recorded in the store; 0 for an empty one (DuckDB and PostgreSQL)."""
    exists = db.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
                       " AND table_catalog = current_database() AND table_schema = current_schema()")
    return int(db.scalar("SELECT coalesce(max(version), 0) FROM schema_version") or 0) if exists else 0


def apply(db: Session, version: int, target: int) -> None:
    """Run the steps after `version` up to `target` inside the caller's transaction."""
    if version == 0:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    for number, step in MIGRATIONS:
        if version < number <= target:
            step(db)
            db.execute("INSERT INTO schema_version VALUES (?, now())", [number])


def newer_error(where: object, version: int) -> StoreError:
    return StoreError(f"{where} has schema version {version}; this release knows up to "
                      f"{CURRENT_VERSION}. Upgrade the software before opening it.")


def bring_up_to_date(store: Migratable, target: int = CURRENT_VERSION) -> int:
    """Apply the missing steps up to `target`; return the version the store is at."""
    version = stored_version(store.read())
    if version > CURRENT_VERSION:
        raise newer_error(store.path, version)
    if version >= target:
        return version
    if store.read_only:
        raise StoreError(f"{store.path} is at schema version {version} and needs upgrading to "
                         f"{target}; open it once without read-only.")
    with store.transaction() as db:
        apply(db, version, target)
    return target
