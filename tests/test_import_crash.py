"""Crash safety: an import killed at any moment leaves the store with all of the batch or none.

A store already holds a first batch; `python -m analytics import` loads a second,
bigger batch (new participants and their activity, a few seconds) and is killed with
SIGKILL at several moments, each keyed on what the import has said, not on a clock:
before it says anything, right after each of its progress lines ("... reading
attendance.csv", "... checking rows of checkins", ...), and at fractions of its write
phase after "... writing". After every kill the store must open, every table must be
exactly as before the import or exactly as after a clean import (never in between, never
some tables one way and some the other), and importing the batch again must give exactly
the contents of the clean reference import.

What a kill can prove does not depend on the machine's speed: progress goes to standard
error line by line before the work it announces, so a run whose whole output lacks
"... writing" was killed before writing anything and must have left none of the batch; a
run that ended by itself must have left all of it. A kill the import outran (it finished
first, on a machine where the test process waited for a core) is retried, up to ATTEMPTS
times, with an earlier kill point.
"""

from __future__ import annotations

import datetime as dt
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

pytestmark = pytest.mark.crash

REPO = Path(__file__).resolve().parent.parent
FIRST_PARTICIPANTS = 3_000
SECOND_PARTICIPANTS = 16_000  # ~2.3M rows: a clean CLI import takes about 1.5-2 s here
# The CLI checks dates against the real today: end the data safely before it.
END = min(synthetic.DEFAULT_END, dt.date.today() - dt.timedelta(days=2))
WRITING = "... writing"  # the progress line printed just before the first write
ATTEMPTS = 3  # kills per kill point when the import keeps finishing first


@dataclass
class Setup:
    second: Path  # the batch the killed imports load
    before_db: Path  # a store holding only the first batch (copied for each kill)
    before: dict  # state() of that store
    after: dict  # state() after a clean import of the second batch
    reference: dict[str, pd.DataFrame]  # import tables after that clean import
    progress: list[str]  # the clean import's progress lines up to (without) "... writing"
    write_phase: float  # seconds from "... writing" to the end of the clean import


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

    # The clean reference: the same CLI, run to the end; its progress lines are the kill points.
    ref_db = copy_store(before_db, root / "reference.duckdb")
    proc = start_import(second, ref_db)
    lines, progress, writing_at = [], [], None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(WRITING):
            writing_at = writing_at or time.monotonic()
        elif writing_at is None and line.startswith("... "):
            progress.append(line.rstrip("\n"))
    out = proc.stdout.read()
    assert proc.wait(timeout=600) == 0, "".join(lines) + out
    assert writing_at is not None, "".join(lines)
    write_phase = time.monotonic() - writing_at
    assert len(progress) >= 8, lines  # checking and reading each of the four files, then the row checks
    with Store.open(ref_db, read_only=True) as store:
        after = state(store)
        reference = import_tables(snapshot(store))

    for name in TABLES:  # "none", "all" and "empty" are three different states
        assert 0 < before[name][0] < after[name][0], (name, before[name], after[name])
    assert before["import_batches"] == (1,) and after["import_batches"] == (1, 2)
    return Setup(second, before_db, before, after, reference, progress, write_phase)


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


@dataclass
class Kill:
    code: int  # the import's exit code: -SIGKILL, or 0 when it finished before the kill
    stderr: str  # everything it printed on standard error, before and after the kill
    landed: str  # 'none' or 'all' (check_killed_store)


def kill_import(s: Setup, db: Path, after_line: str | None, delay: float = 0.0) -> Kill:
    """Start the import into a copy of the first-batch store and SIGKILL it `delay` seconds
    after it prints a line starting with `after_line` (None: at once, before it prints
    anything); then check the store and what the outcome must be."""
    copy_store(s.before_db, db)
    proc = start_import(s.second, db)
    seen = []
    if after_line is not None:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(after_line):
                break
        else:
            pytest.fail(f"the import ended without printing {after_line!r}: {''.join(seen)}")
        time.sleep(delay)
    proc.kill()
    _, rest = proc.communicate(timeout=600)
    kill = Kill(proc.returncode, "".join(seen) + rest, check_killed_store(db, s))
    assert kill.code in (0, -signal.SIGKILL), kill.stderr
    if WRITING not in kill.stderr:  # killed before it began to write
        assert kill.code == -signal.SIGKILL and kill.landed == "none", kill
    if kill.code == 0:  # it finished before the kill: the whole batch is in
        assert kill.landed == "all", kill
    return kill


def kill_in_time(s: Setup, tmp_path: Path, after_line: str | None, delay: float = 0.0, *,
                 before_commit: bool = False) -> Kill:
    """kill_import until a kill lands before the import ends (and, with before_commit, before
    its commit: none of the batch in); each outrun attempt is checked too, then tried earlier."""
    for attempt in range(ATTEMPTS):
        kill = kill_import(s, tmp_path / f"store-{attempt}.duckdb", after_line, delay)
        if kill.code == -signal.SIGKILL and (kill.landed == "none" or not before_commit):
            return kill
        delay /= 2
    pytest.fail(f"each of {ATTEMPTS} kills after {after_line!r} came too late; the last: {kill}")


def test_a_kill_before_any_output_leaves_none(setup: Setup, tmp_path: Path):
    assert kill_in_time(setup, tmp_path, None, before_commit=True).landed == "none"


# Which progress line to kill after: a fraction of the way through the lines before
# "... writing" (0: the first, "... checking attendance.csv"; 1: the last row check).
AT_LINES = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("fraction", AT_LINES, ids=[f"line-{int(f * 100)}pct" for f in AT_LINES])
def test_a_kill_while_reading_and_checking_leaves_none(setup: Setup, tmp_path: Path, fraction: float):
    line = setup.progress[round(fraction * (len(setup.progress) - 1))]
    kill = kill_in_time(setup, tmp_path, line)
    assert line in kill.stderr
    if WRITING not in kill.stderr:  # (checked in kill_import) the usual case: nothing written
        assert kill.landed == "none"


# When to kill after "... writing": a fraction of the clean import's write phase (write,
# commit, checkpoint, exit). 0.0 kills as soon as the line is read.
AFTER_WRITING = [0.0, 0.5, 0.9]


@pytest.mark.parametrize("fraction", AFTER_WRITING, ids=[f"writing+{int(f * 100)}pct" for f in AFTER_WRITING])
def test_a_kill_during_the_write_phase_leaves_all_or_none(setup: Setup, tmp_path: Path, fraction: float):
    """Killed as the write begins, the store must be found with none of the batch (the
    rollback); later kills may find it committed or not, but never half."""
    kill = kill_in_time(setup, tmp_path, WRITING, fraction * setup.write_phase, before_commit=fraction == 0.0)
    assert WRITING in kill.stderr
