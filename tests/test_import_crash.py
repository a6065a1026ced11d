"""Crash safety: an import killed at any moment leaves the store with all of the batch or none.

A store already holds a first batch; `python -m analytics import` loads a second,
bigger batch (new participants and their activity, about 1-3 s) and is killed with
SIGKILL at several moments: at fractions of the time a clean run takes, and right
after (or a little after) it announces its write phase ("... writing"). After every
kill the store must open, every table must be exactly as before the import or
exactly as after a clean import (never in between, never some tables one way and
some the other), and importing the batch again must give exactly the contents of
the clean reference import.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from analytics.ingest import importer
from analytics.ingest import synthetic
from analytics.store.schema import TABLES
from analytics.store.connection import Store
from conftest import assert_same, snapshot

REPO = Path(__file__).resolve().parent.parent
FIRST_PARTICIPANTS = 3_000
SECOND_PARTICIPANTS = 16_000  # ~2.3M rows: a clean CLI import takes about 1.5-2 s here
# The CLI checks dates against the real today: end the data safely before it.
END = min(synthetic.DEFAULT_END, dt.date.today() - dt.timedelta(days=2))


@dataclass
class Setup:
    second: Path  # the batch the killed imports load
    before_db: Path  # a store holding only the first batch (copied for each kill)
    before: dict  # state() of that store
    after: dict  # state() after a clean import of the second batch
    reference: dict[str, pd.DataFrame]  # import tables after that clean import
    duration: float  # seconds a clean CLI import of the second batch took
    writing_at: float  # seconds into it that "... writing" appeared


def state(store: Store) -> dict:
    """Per table: row count and a hash of all its rows; the import log's batches and files."""
    out: dict = {}
    for name, table in TABLES.items():
        cols = ", ".join(table.column_names)
        out[name] = tuple(store.rows(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {name}")[0])
    out["import_batches"] = tuple(r[0] for r in store.rows("SELECT batch_id FROM import_batches ORDER BY 1"))
    out["import_files"] = tuple(store.rows(
        "SELECT batch_id, file_name, table_name, sha256, rows_read, rows_new, rows_updated, rows_unchanged "
        "FROM import_files ORDER BY batch_id, file_name"))
    return out


def import_tables(snap: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {name: snap[name] for name in TABLES}


def start_import(folder: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "analytics", "import", str(folder), "--db", str(db)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    if Path(f"{src}.wal").exists():
        shutil.copyfile(f"{src}.wal", f"{dst}.wal")
    return dst


def relabel(src: Path, dst: Path) -> None:
    """The same files with every participant_id (the first column) starting Q- instead of
    P-, so the second batch is all new participants, none of the first batch's."""
    dst.mkdir()
    for path in sorted(src.glob("*.csv")):
        text = path.read_text(encoding="utf-8")
        header, body = text.split("\n", 1)
        assert header.startswith("participant_id,") and body.startswith("P-")
        (dst / path.name).write_text(header + "\n" + ("\n" + body).replace("\nP-", "\nQ-")[1:],
                                     encoding="utf-8")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("crash")
    first, raw, second = root / "first", root / "raw", root / "second"
    synthetic.write_sample(first, participants=FIRST_PARTICIPANTS, seed=101, end=END)
    synthetic.write_sample(raw, participants=SECOND_PARTICIPANTS, seed=202, end=END)
    relabel(raw, second)
    shutil.rmtree(raw)

    before_db = root / "before.duckdb"
    with Store.open(before_db) as store:
        result = importer.import_files(store, [first])
        assert result.ok, result.problems[:5]
        before = state(store)

    # The clean reference: the same CLI, run to the end, timed.
    ref_db = copy_store(before_db, root / "reference.duckdb")
    start = time.monotonic()
    proc = start_import(second, ref_db)
    writing_at = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("... writing") and writing_at is None:
            writing_at = time.monotonic() - start
    out = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, "".join(lines) + out
    duration = time.monotonic() - start
    assert writing_at is not None, "".join(lines)
    with Store.open(ref_db, read_only=True) as store:
        after = state(store)
        reference = import_tables(snapshot(store))

    for name in TABLES:  # "none", "all" and "empty" are three different states
        assert 0 < before[name][0] < after[name][0], (name, before[name], after[name])
    assert before["import_batches"] == (1,) and after["import_batches"] == (1, 2)
    return Setup(second, before_db, before, after, reference, duration, writing_at)


def check_killed_store(db: Path, s: Setup) -> str:
    """The store opens; it holds all of the batch or none of it; re-importing the batch
    then gives exactly the reference contents. Returns 'none' or 'all'."""
    with Store.open(db) as store:
        got = state(store)
        verdict = {}
        for name in (*TABLES, "import_batches", "import_files"):
            if got[name] == s.before[name]:
                verdict[name] = "none"
            elif got[name] == s.after[name]:
                verdict[name] = "all"
            else:
                verdict[name] = "partial"
        counts = {n: (s.before[n][0], got[n][0], s.after[n][0]) for n in TABLES}
        assert "partial" not in verdict.values(), (
            f"partial load: {verdict}; (before, now, after) row counts: {counts}; "
            f"batches {got['import_batches']}")
        assert len(set(verdict.values())) == 1, (
            f"some tables have the batch and some do not: {verdict}; counts {counts}")
        landed = verdict["participants"]

        again = importer.import_files(store, [s.second])
        assert again.ok, again.problems[:5]
        assert_same(import_tables(snapshot(store)), s.reference)
        batches = store.df("SELECT batch_id FROM import_batches ORDER BY 1").batch_id.tolist()
        assert batches == [1, 2]  # landed: the re-import changes nothing and logs no empty batch
        if landed == "all":
            assert not again.changed  # the batch was already there: nothing new
    return landed


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


# When to kill: seconds after start (a fraction of a clean run), or after "... writing"
# plus a fraction of the clean run's write phase (write, commit, checkpoint).
AT_FRACTIONS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.95]  # 0.0 means 0.05 s: before the import starts
AFTER_WRITING = [0.0, 0.5, 0.9]


@pytest.mark.parametrize("fraction", AT_FRACTIONS, ids=[f"at-{int(f * 100)}pct" for f in AT_FRACTIONS])
def test_kill_at_any_time_leaves_all_or_none(setup: Setup, tmp_path: Path, fraction: float):
    db = copy_store(setup.before_db, tmp_path / "store.duckdb")
    delay = max(0.05, fraction * setup.duration)
    start = time.monotonic()
    proc = start_import(setup.second, db)
    time.sleep(max(0.0, start + delay - time.monotonic()))
    os.kill(proc.pid, signal.SIGKILL)
    code, err = finish(proc)
    # Timings vary with the machine's load: early kills must really kill; later ones may
    # find the run already finished (the write-phase tests below key on its progress line).
    if fraction <= 0.4:
        assert code == -signal.SIGKILL, f"exit {code} before the kill at {delay:.2f}s: {err}"
    else:
        assert code in (0, -signal.SIGKILL), err
    landed = check_killed_store(db, setup)
    if code == -signal.SIGKILL and delay < 0.5 * setup.writing_at:  # well before writing: nothing written
        assert landed == "none"
    if code == 0:
        assert landed == "all"


@pytest.mark.parametrize("fraction", AFTER_WRITING, ids=[f"writing+{int(f * 100)}pct" for f in AFTER_WRITING])
def test_kill_during_write_phase_leaves_all_or_none(setup: Setup, tmp_path: Path, fraction: float):
    db = copy_store(setup.before_db, tmp_path / "store.duckdb")
    proc = start_import(setup.second, db)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("... writing"):
            time.sleep(fraction * (setup.duration - setup.writing_at))
            os.kill(proc.pid, signal.SIGKILL)
            break
    else:
        pytest.fail(f"the import ended without a write phase: {''.join(seen)}")
    code, err = finish(proc)
    if fraction == 0.0:
        assert code == -signal.SIGKILL, f"exit {code}: {''.join(seen)}{err}"
        # killed right as the write began: nothing can have been committed
    else:
        assert code in (0, -signal.SIGKILL), err
    landed = check_killed_store(db, setup)
    if fraction == 0.0:
        assert landed == "none"
    if code == 0:
        assert landed == "all"
