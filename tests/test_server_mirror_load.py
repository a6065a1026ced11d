"""Loading the mirror from PostgreSQL (server.load_tables): read in parts by parallel reader
connections, it must hold exactly the rows the caller's connection sees: the same snapshot
(not a later import) and the same row-level scope."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict

from analytics.ingest.importer import import_files
from analytics.store import server
from analytics.store.connection import Store
from tests.conftest import TODAY, assert_same, snapshot
from tests.pg import OWNER, pg_db, pg_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def loaded(conn: psycopg.Connection) -> Store:
    """A fresh mirror loaded on `conn`, as a Store to query."""
    mirror = server.Mirror()
    server.load_tables(conn, mirror.con.cursor())
    return Store(mirror.con, None, True)


def repeatable_read(url: str) -> psycopg.Connection:
    conn = server.connect(url)
    conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
    return conn


@pytest.fixture
def sample_db(pg_db: str) -> str:
    with Store.open(pg_db) as store:
        assert import_files(store, [SAMPLE], today=TODAY).ok
    return pg_db


def test_a_load_in_many_parts_gives_the_embedded_stores_rows(sample_db, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "_PART_BLOCKS", 3)  # attendance: ~100 parts over 2 readers
    with repeatable_read(sample_db) as conn:
        assert len(server._parts(conn, server.Mirror().con.cursor(), "attendance")) > 50
        mirror = loaded(conn)
    with Store.open(tmp_path / "e.duckdb") as embedded:
        assert import_files(embedded, [SAMPLE], today=TODAY).ok
        expected = snapshot(embedded)
    got = snapshot(mirror)
    for both in (expected, got):
        both["import_batches"] = both["import_batches"].drop(columns="imported_at")
    assert_same(expected, got)
    assert len(got["attendance"]) == sum(1 for _ in (SAMPLE / "attendance.csv").open()) - 1


def test_readers_see_the_callers_snapshot_not_a_later_write(sample_db, pg_server, monkeypatch):
    monkeypatch.setattr(server, "_PART_BLOCKS", 3)
    with repeatable_read(sample_db) as conn:
        before = server.current_version(conn)  # the snapshot is taken here
        with pg_server.connect(conninfo_to_dict(sample_db)["dbname"], OWNER) as other:
            other.execute("DELETE FROM attendance WHERE attended_on < (SELECT min(attended_on) + 60 "
                          "FROM attendance)")
            other.execute("INSERT INTO attendance SELECT participant_id, enrolled_on, 'other', 'online', 7 "
                          "FROM participants")
            now = other.execute("SELECT count(*) FROM attendance").fetchone()[0]
        seen = conn.execute("SELECT count(*) FROM attendance").fetchone()[0]
        mirror = loaded(conn)
        assert server.current_version(conn) == before
    assert mirror.scalar("SELECT count(*) FROM attendance") == seen != now
    assert mirror.scalar("SELECT count(*) FROM attendance WHERE minutes = 7 AND meeting_type = 'other'") == 0


def test_readers_take_the_callers_row_level_scope(sample_db, pg_server):
    """The store's row-level security reads the caller's app.sites: a reader that did not copy it
    would load every site."""
    database = conninfo_to_dict(sample_db)["dbname"]
    with pg_server.connect(database, OWNER) as owner:
        sites = dict(owner.execute("SELECT site, count(*) FROM participants WHERE site IS NOT NULL "
                                   "GROUP BY site").fetchall())
    site = sorted(sites)[0]
    assert len(sites) > 1 and sites[site] >= 11
    with repeatable_read(sample_db) as conn:
        server.limit_to_sites(conn, [site])
        mirror = loaded(conn)
    assert mirror.rows("SELECT site, count(*) FROM participants GROUP BY site") == [(site, sites[site])]
