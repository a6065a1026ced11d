"""The server store (PostgreSQL + a DuckDB mirror) against a real PostgreSQL (tests/pg.py):
the same rows and the same numbers as the embedded store, imports all-or-none and one at a
time, an audit log the database keeps append-only."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.access import audit
from analytics.analyses import cohorts, kpis, quality, survival
from analytics.ingest import synthetic
from analytics.ingest.importer import import_files
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import default_period
from analytics.store.connection import Store, StoreError
from analytics.store.server import LOCKS, ServerStore
from tests.conftest import TODAY, assert_same, snapshot
from tests.pg import OWNER, PgServer, pg_db, pg_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SAMPLE_ATTENDANCE = sum(1 for _ in (SAMPLE / "attendance.csv").open()) - 1  # rows, header left out


def tables(store: Store) -> dict[str, pd.DataFrame]:
    """Every import table and the files log: what two stores fed the same batches share
    (import_batches differs only in its clock)."""
    snap = snapshot(store)
    snap["import_batches"] = snap["import_batches"].drop(columns="imported_at")
    return snap


def numbers(store: Store) -> dict:
    """A spread of the product's results, as JSON text: survival both ways, KPIs, cohorts, quality."""
    out = {}
    for outcome in ("sobriety", "retention"):
        out[outcome] = survival.analyse(store, outcome, by="program").to_json()
    period = default_period(store)
    out["overview"] = kpis.overview(store, Filters(), period)
    out["by_program"] = kpis.by_program(store, Filters(), period)
    out["cohorts"] = cohorts.cohort_retention(store, Filters())
    out["missing"] = quality.missing_values(store)
    return json.loads(json.dumps(out, default=_plain, sort_keys=True))


def _plain(value: object) -> object:
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.to_dict(orient="split") if isinstance(value, pd.DataFrame) else value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return value.item() if isinstance(value, np.generic) else str(value)


def write(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_the_sample_gives_the_same_rows_and_numbers_in_both_stores(pg_db, tmp_path):
    with Store.open(tmp_path / "e.duckdb") as embedded, Store.open(pg_db) as server:
        assert server.is_server and import_files(server, [SAMPLE], today=TODAY).ok
        assert import_files(embedded, [SAMPLE], today=TODAY).ok
        assert_same(tables(embedded), tables(server))
        assert int(server.scalar("SELECT count(*) FROM attendance")) == SAMPLE_ATTENDANCE
        assert numbers(embedded) == numbers(server)


def test_updates_and_a_second_process_see_the_same_store(pg_db, tmp_path, small_frames):
    first = write(small_frames, tmp_path / "first")
    changed = {k: v.copy() for k, v in small_frames.items()}
    open_row = changed["participants"]["exited_on"].isna().idxmax()
    changed["participants"].loc[open_row, ["exited_on", "exit_reason"]] = ["2026-10-01", "completed"]
    changed["attendance"].loc[0, "minutes"] = 7
    second = write(changed, tmp_path / "second")
    with Store.open(tmp_path / "e.duckdb") as embedded, Store.open(pg_db) as server, Store.open(pg_db) as other:
        before = other.data_version()
        assert other.scalar("SELECT count(*) FROM participants") == 0  # the other process's mirror, loaded
        for store in (embedded, server):
            assert import_files(store, [first], today=TODAY).ok
            result = import_files(store, [second], today=TODAY)
            assert result.counts["participants"].updated == 1 and result.counts["attendance"].updated == 1
        assert other.data_version() == (before[0] + 2,)
        assert_same(tables(embedded), tables(other))  # the other process reloads its mirror
        assert other.scalar("SELECT minutes FROM attendance WHERE participant_id = ? AND attended_on = ?",
                            [changed["attendance"].loc[0, "participant_id"],
                             pd.Timestamp(changed["attendance"].loc[0, "attended_on"]).date()]) == 7


FREE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf")),
                    min_size=1, max_size=30).map(str.strip).filter(bool)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), size=st.integers(15, 60), sites=st.lists(FREE_TEXT, min_size=1, max_size=3),
       gender=FREE_TEXT)
def test_property_generated_stores_give_the_same_numbers(pg_server, tmp_path_factory, seed, size, sites, gender):
    """Random data sets, with free text holding quotes, commas, backslashes, any script:
    what the CSV round trips between PostgreSQL and DuckDB must carry exactly."""
    frames = synthetic.generate(participants=size, seed=seed)
    people = frames["participants"]
    people["site"] = [sites[i % len(sites)] for i in range(len(people))]
    people.loc[people.index[::3], "gender"] = gender
    folder = write(frames, tmp_path_factory.mktemp("prop"))
    url = pg_server.url(pg_server.new_database(), OWNER)
    with Store.open(folder / "e.duckdb") as embedded, Store.open(url) as server:
        for store in (embedded, server):
            assert import_files(store, [folder], today=TODAY).ok
        assert_same(tables(embedded), tables(server))
        assert numbers(embedded) == numbers(server)


def test_a_refused_import_writes_nothing(pg_db, tmp_path, small_frames):
    bad = {k: v.copy() for k, v in small_frames.items()}
    bad["attendance"].loc[5, "minutes"] = 5000
    with Store.open(pg_db) as server:
        result = import_files(server, [write(bad, tmp_path / "bad")], today=TODAY)
        assert not result.ok and server.data_version() == (0,)
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT count(*) FROM participants").fetchone() == (0,)


def test_a_direct_write_to_an_import_table_is_refused(pg_db):
    with Store.open(pg_db) as server, server.transaction() as db, pytest.raises(StoreError, match="insert_select"):
        db.execute("INSERT INTO participants (participant_id, program, enrolled_on) VALUES ('X1', 'A', '2025-01-01')")


def _import(url: str, folder: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "analytics", "import", str(folder), "--db", url, *extra],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_imports_run_one_at_a_time(pg_db):
    """Two processes import the same files at once: one lands them, the other, waiting on the
    lock and then reading what landed, finds nothing new (without the lock: every row twice)."""
    procs = [_import(pg_db, SAMPLE) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT count(*) FROM participants").fetchone() == (800,)
        assert conn.execute("SELECT count(*) FROM attendance").fetchone() == (SAMPLE_ATTENDANCE,)
        assert conn.execute("SELECT count(*), max(batch_id) FROM import_batches").fetchone() == (1, 1)
        assert conn.execute("SELECT version FROM data_version").fetchone() == (1,)


def _holds_import_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
                            [LOCKS["import"]]).fetchone()[0] > 0


def test_kill_9_during_an_import_leaves_nothing(pg_db, tmp_path):
    """kill -9 once the import holds its lock and is writing: PostgreSQL rolls the
    transaction back, the lock is free, and the same import then lands whole."""
    big = write(synthetic.generate(participants=3000, seed=3), tmp_path / "big")
    proc = _import(pg_db, big)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "writing" in line:
            break
    deadline = time.monotonic() + 30
    while not _holds_import_lock(pg_db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, seen
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with psycopg.connect(pg_db) as conn:
        for table in ("participants", "attendance", "checkins", "mentoring", "assessments", "import_batches"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        assert conn.execute("SELECT version FROM data_version").fetchone() == (0,)
    deadline = time.monotonic() + 10
    while _holds_import_lock(pg_db) and time.monotonic() < deadline:  # the backend notices the closed socket
        time.sleep(0.1)
    assert not _holds_import_lock(pg_db)
    done = _import(pg_db, big)
    assert done.wait(timeout=300) == 0, done.communicate()
    with Store.open(pg_db) as server:
        assert server.scalar("SELECT count(*) FROM participants") == 3000


def test_the_audit_log_is_append_only_in_the_database(pg_server, pg_db):
    with Store.open(pg_db) as server:
        audit.record(server, "export", "km.png", user="amira")
        audit.record(server, "report", "r.pdf", user="bo")
        assert list(audit.entries(server)["seq"]) == [2, 1] and audit.first_broken(server) is None
    owner_url = pg_db.replace("outcomes_app@", f"{OWNER}@")
    for url, refusal in ((pg_db, "permission denied"), (owner_url, "append-only")):
        for sql in ("UPDATE audit_log SET user_name = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with psycopg.connect(url) as conn, pytest.raises(psycopg.Error, match=refusal):
                conn.execute(sql)
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (2,)


def test_the_cell_key_secret_lives_in_postgresql_and_every_process_reads_the_same(pg_db):
    from analytics.store.queries.disclosure import cell_key_secret

    with Store.open(pg_db) as a, Store.open(pg_db) as b:
        secret = cell_key_secret(a)
        a.mirror()  # the mirror makes a disclosure_meta of its own (the same migrations): never read
        assert cell_key_secret(b) == secret and len(secret) == 32
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT value FROM disclosure_meta WHERE name = 'cell_key_secret'"
                            ).fetchone() == (secret.hex(),)
        with pytest.raises(psycopg.Error, match="permission denied"):  # the app role only reads it
            conn.execute("UPDATE disclosure_meta SET value = 'x'")


def test_concurrent_audit_entries_keep_one_chain(pg_db):
    with Store.open(pg_db) as a, Store.open(pg_db) as b:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: audit.record((a, b)[i % 2], "view", f"page {i}"), range(40)))
        assert sorted(audit.entries(a)["seq"]) == list(range(1, 41))
        assert audit.first_broken(a) is None
