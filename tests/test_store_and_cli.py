"""The store (path, schema versions), re-imports and updates, and the CLI contract."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics.ingest import importer
from analytics.store import migrations
from analytics.store.connection import DB_ENV, Session, Store, StoreError, resolve_path
from conftest import TODAY, assert_same, snapshot

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics", *args], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=300)


def test_path_comes_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv(DB_ENV, raising=False)
    assert resolve_path() == REPO / "data" / "outcomes.duckdb"
    monkeypatch.setenv(DB_ENV, str(tmp_path / "env.duckdb"))
    assert resolve_path() == tmp_path / "env.duckdb"
    assert resolve_path(tmp_path / "arg.duckdb") == tmp_path / "arg.duckdb"


def test_import_counts_then_reimport_changes_nothing(store: Store, valid_dir: Path, small_frames):
    first = importer.import_files(store, [valid_dir], today=TODAY)
    assert first.ok
    for name, frame in small_frames.items():
        assert first.counts[name].new == len(frame)
        assert store.scalar(f"SELECT count(*) FROM {name}") == len(frame)
    before = snapshot(store)
    again = importer.import_files(store, [valid_dir], today=TODAY)
    assert again.ok and not again.changed
    for name, frame in small_frames.items():
        c = again.counts[name]
        assert (c.new, c.updated, c.unchanged) == (0, 0, len(frame))
    after = snapshot(store)
    for name in small_frames:  # data unchanged, and no empty batch in the history
        pd.testing.assert_frame_equal(before[name], after[name])
    assert after["import_batches"].batch_id.tolist() == [1]
    assert after["import_files"].batch_id.unique().tolist() == [1]
    assert again.batch_id is None


def test_changed_participant_is_updated_and_named(store: Store, valid_dir: Path):
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    path = valid_dir / "participants.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = frame.index[frame.exited_on == ""][0]
    pid = frame.loc[row, "participant_id"]
    frame.loc[row, ["exited_on", "exit_reason"]] = ["2026-10-01", "completed"]
    frame.to_csv(path, index=False)
    result = importer.import_files(store, [path], today=TODAY)
    assert result.ok
    assert result.updated_participants == [(pid, ["exited_on", "exit_reason"])]
    c = result.counts["participants"]
    assert (c.new, c.updated, c.unchanged) == (0, 1, len(frame) - 1)
    assert store.rows("SELECT exited_on, exit_reason FROM participants WHERE participant_id = ?", [pid]) == [
        (pd.Timestamp("2026-10-01").date(), "completed")]


def test_changed_activity_row_is_updated_not_duplicated(store: Store, valid_dir: Path):
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    path = valid_dir / "checkins.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, "mood"] = "5" if frame.loc[0, "mood"] != "5" else "1"
    frame.to_csv(path, index=False)
    result = importer.import_files(store, [path], today=TODAY)
    assert result.counts["checkins"].updated == 1 and result.counts["checkins"].new == 0
    assert store.scalar("SELECT count(*) FROM checkins") == len(frame)
    assert store.scalar("SELECT count(*) - count(DISTINCT (participant_id, checked_in_on)) FROM checkins") == 0


def test_import_log_records_files_and_hashes(store: Store, valid_dir: Path):
    import hashlib
    assert importer.import_files(store, [valid_dir], today=TODAY).ok
    log = store.df("SELECT * FROM import_files ORDER BY file_name")
    assert log.file_name.tolist() == ["assessments.csv", "attendance.csv", "checkins.csv", "mentoring.csv",
                                     "participants.csv"]
    for rec in log.itertuples():
        assert rec.sha256 == hashlib.sha256((valid_dir / rec.file_name).read_bytes()).hexdigest()
        assert rec.rows_new == rec.rows_read
    assert store.scalar("SELECT source FROM import_batches") == "user"


def test_dry_run_writes_nothing(store: Store, valid_dir: Path):
    before = snapshot(store)
    result = importer.import_files(store, [valid_dir], dry_run=True, today=TODAY)
    assert result.ok and result.counts["participants"].new == 60
    assert_same(before, snapshot(store))


def _make_v1_store(path: Path) -> None:
    """A store as release 1 of the schema left it, with one import logged."""
    con = duckdb.connect(str(path))
    db = Session(con.cursor(), threading.Lock())
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    migrations.MIGRATIONS[0][1](db)
    db.execute("INSERT INTO schema_version VALUES (1, now())")
    db.execute("INSERT INTO import_batches VALUES (1, now(), 0)")
    con.close()


def test_store_from_older_schema_is_upgraded(tmp_path: Path, valid_dir: Path):
    path = tmp_path / "old.duckdb"
    _make_v1_store(path)
    with pytest.raises(StoreError, match="needs upgrading"):
        Store.open(path, read_only=True)
    with Store.open(path) as store:
        assert migrations.stored_version(store.read()) == migrations.CURRENT_VERSION
        assert store.rows("SELECT batch_id, source FROM import_batches") == [(1, "user")]
        assert importer.import_files(store, [valid_dir], today=TODAY).ok
        assert store.scalar("SELECT max(batch_id) FROM import_batches") == 2


def test_store_from_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "new.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (99, now())")
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store.open(path)


def test_check_constraints_guard_the_tables(store: Store):
    with pytest.raises(duckdb.ConstraintException):
        store.read().execute("INSERT INTO checkins VALUES ('P-1', DATE '2025-01-01', true, 11, 3)")
    with pytest.raises(duckdb.ConstraintException):
        store.read().execute("INSERT INTO participants (participant_id, program, enrolled_on, exited_on) "
                             "VALUES ('P-1', 'A', DATE '2025-01-01', DATE '2025-02-01')")


def test_extensions_never_autoload(store: Store):
    settings = dict(store.rows("SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'"))
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_cli_import_success_refusal_report_and_env(tmp_path: Path, valid_dir: Path):
    db = tmp_path / "cli.duckdb"
    ok = run_cli("import", str(valid_dir), "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    assert "participants" in ok.stdout and "60" in ok.stdout
    again = run_cli("import", str(valid_dir), "--db", str(db))
    assert again.returncode == 0 and "Nothing changed" in again.stdout

    bad = valid_dir / "checkins.csv"
    frame = pd.read_csv(bad, dtype=str, keep_default_na=False)
    frame.loc[0, "craving"] = "99"
    frame.to_csv(bad, index=False)
    report = tmp_path / "problems.csv"
    refused = run_cli("import", str(bad), "--db", str(db), "--report", str(report))
    assert refused.returncode == 1
    assert "nothing was written" in refused.stdout
    lines = report.read_text().splitlines()
    assert lines == ["file,row,column,value,problem", "checkins.csv,2,craving,99,out of range (must be 0 to 10)"]

    import os
    env = dict(os.environ, OUTCOMES_DB=str(db))
    summary = run_cli("summary", env=env)
    assert summary.returncode == 0 and str(db) in summary.stdout
    assert "last import: batch 1" in summary.stdout  # the unchanged re-import logged no batch


def test_cli_dry_run_on_missing_store_creates_nothing(tmp_path: Path, valid_dir: Path):
    db = tmp_path / "none.duckdb"
    out = run_cli("import", str(valid_dir), "--db", str(db), "--dry-run")
    assert out.returncode == 0 and "Dry run" in out.stdout
    assert not db.exists()


def test_cli_summary_of_missing_store_is_a_clear_error(tmp_path: Path):
    out = run_cli("summary", "--db", str(tmp_path / "missing.duckdb"))
    assert out.returncode == 2 and "no store at" in out.stderr
