"""Shared fixtures: a small valid data set in the import format, and fresh stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from analytics.access import roles as access
from analytics.ingest import synthetic
from analytics.store.schema import TABLES
from analytics.store.connection import Store

TODAY = dt.date(2026, 11, 27)  # fixed "today" so date rules do not move under the tests


@pytest.fixture(autouse=True)
def _dashboard_access_off():
    """An AppTest runs the app in this process and turns access enforcement on; library
    tests after it run as the command line does (no user acting, nothing enforced)."""
    yield
    access.enforce(False)
    access.set_user(None)


@pytest.fixture(scope="session")
def small_frames() -> dict[str, pd.DataFrame]:
    """A small synthetic data set (60 participants) as frames in the import format."""
    return synthetic.generate(participants=60, seed=7)


@pytest.fixture
def valid_dir(tmp_path: Path, small_frames: dict[str, pd.DataFrame]) -> Path:
    """The small data set written as four CSV files."""
    folder = tmp_path / "valid"
    folder.mkdir()
    for name, frame in small_frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store.duckdb")
    yield s
    s.close()


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    """Every import table and the import log, sorted: equal snapshots mean an unchanged store."""
    out = {}
    for name, table in TABLES.items():
        out[name] = store.df(f"SELECT * FROM {name} ORDER BY {', '.join(table.column_names)}")
    out["import_batches"] = store.df("SELECT * FROM import_batches ORDER BY batch_id")
    out["import_files"] = store.df("SELECT * FROM import_files ORDER BY batch_id, file_name")
    return out


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)
