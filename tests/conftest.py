"""Shared fixtures (a small valid data set in the import format, fresh stores), the test
tiers, and deterministic property tests."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from analytics.access import roles as access
from analytics.ingest import synthetic
from analytics.store.schema import TABLES
from analytics.store.connection import Store

TODAY = dt.date(2026, 11, 27)  # fixed "today" so date rules do not move under the tests

# The tiers registered in pytest.ini. A test marks its tier (pytestmark for a whole module);
# one without a tier is a unit test.
TIERS = ("unit", "r", "browser", "crash", "notebook", "postgres")
COLLECTED_TIERS = pytest.StashKey[dict[str, list[str]]]()

# Property tests draw the same examples on every run, with no per-example deadline and no
# "too slow" health check (a loaded CI machine is slow, not wrong). HYPOTHESIS_PROFILE=explore
# draws new examples each run, to look for new counterexamples.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def tiers_of(item: pytest.Item) -> list[str]:
    return [mark.name for mark in item.iter_markers() if mark.name in TIERS]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m unit` selects the unmarked tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `unit` on every test without a tier, and keep every collected test's tiers for
    tests/test_tiers.py (after -m, only the selected tests remain in `items`)."""
    for item in items:
        if not tiers_of(item):
            item.add_marker(pytest.mark.unit)
    config.stash[COLLECTED_TIERS] = {item.nodeid: tiers_of(item) for item in items}


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
