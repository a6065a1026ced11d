"""Embedded store held by another process: every command says so and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.store.connection import Store

REPO = Path(__file__).resolve().parents[1]
HOLD = "import sys, time; from analytics.store.connection import Store; s = Store.open(sys.argv[1]); print('open', flush=True); time.sleep(120)"


@pytest.fixture
def held(tmp_path: Path):
    """A store file that another process (standing in for the dashboard) holds open for writing."""
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "open"
    yield path, proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("command", [["summary"], ["import", "data/sample"], ["users", "list"], ["audit", "verify"],
                                     ["survival", "--outcome", "retention"]])
def test_every_command_says_who_holds_the_store_and_what_to_do(held, command):
    path, pid = held
    done = subprocess.run([sys.executable, "-m", "analytics", *command, "--db", str(path)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done
    assert f"is in use by another process (PID {pid}, probably the dashboard)" in done.stderr
    assert "Stop the dashboard" in done.stderr and "Data page" in done.stderr and "postgresql://" in done.stderr
    assert "Traceback" not in done.stderr
