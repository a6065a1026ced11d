"""Small programs cut from the bundled sample: a chosen number of people per program, with all
their activity, written in the import format and imported into a fresh store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.ingest import importer
from analytics.store.connection import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
TABLES = ("attendance", "checkins", "mentoring", "assessments")


def small_store(folder: Path, sizes: dict[str, int], seed: int, site_split: bool = False,
                sites: list[str] | None = None) -> Store:
    """A store of ``sizes`` people per program (names given here), drawn from the sample's
    participants enrolled in 2026 (so the report's period holds them). ``sites``: one site per
    participant, in the order of the programs."""
    rng = np.random.default_rng(seed)
    people = pd.read_csv(SAMPLE / "participants.csv", dtype=str, keep_default_na=False)
    pool = people[people.enrolled_on >= "2026-01-01"]
    picked = pool.iloc[rng.choice(len(pool), sum(sizes.values()), replace=False)].copy()
    picked["program"] = np.repeat(list(sizes), list(sizes.values()))
    if site_split:
        picked["site"] = rng.choice(["Westfield", "Downtown"], len(picked))
    if sites is not None:
        picked["site"] = sites
    folder.mkdir(parents=True, exist_ok=True)
    picked.to_csv(folder / "participants.csv", index=False)
    ids = set(picked.participant_id)
    for name in TABLES:
        if (SAMPLE / f"{name}.csv").exists():
            rows = pd.read_csv(SAMPLE / f"{name}.csv", dtype=str, keep_default_na=False)
            rows[rows.participant_id.isin(ids)].to_csv(folder / f"{name}.csv", index=False)
    store = Store.open(folder / "store.duckdb")
    set_secret(store, seed)
    importer.import_files(store, [folder], today=dt.date(2026, 11, 30))
    return store


def set_secret(store: Store, seed: int) -> bytes:
    """Give the store a cell-key secret drawn from ``seed``: the same example draws the same noise
    on every run (a store's own secret is random)."""
    secret = np.random.default_rng(seed).bytes(32)
    store.read().execute("UPDATE disclosure_meta SET value = $v WHERE name = 'cell_key_secret'", {"v": secret.hex()})
    return secret
