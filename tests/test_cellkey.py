"""The cell key method (analytics.publish.cellkey): the same cell always gets the same noise, and
issue 12's differencing attack across requests (new enrollments by program minus by site) yields
only noise."""

from __future__ import annotations

import numpy as np

from analytics.publish import cellkey
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret

SECRET = bytes(range(32))


def test_the_same_people_get_the_same_noise_in_any_order():
    ids = [f"P{i:04d}" for i in range(30)]
    assert cellkey.perturb(SECRET, ids) == cellkey.perturb(SECRET, list(reversed(ids)))
    assert cellkey.perturb(SECRET, []) == 0
    assert cellkey.perturb(b"another store's secret", ids) in range(28, 33)


def test_published_from_record_keys_equals_perturb_of_the_ids_and_wraps_its_sum():
    """cellkey.published (life tables, engagement and recovery-capital counts) is perturb written
    over keys already computed: the same count for the same people, a uint64 sum wrapping mod 2^64."""
    ids = [f"P-{i:04d}" for i in range(300)]
    keys = cellkey.record_keys(SECRET, ids)
    assert int(keys.astype(object).sum()) >= cellkey.MODULUS  # the sum wraps: the test means something
    for k in (1, 5, 37, 300):
        assert cellkey.published(keys[:k]) == cellkey.perturb(SECRET, ids[:k])
    assert cellkey.published(keys[:0]) == 0


def test_noise_is_small_centred_and_uses_the_whole_table():
    rng = np.random.default_rng(0)
    noise = []
    for _ in range(2000):
        ids = [f"P{i:05d}" for i in rng.choice(100_000, 40, replace=False)]
        noise.append(cellkey.perturb(SECRET, ids) - 40)
    values, counts = np.unique(noise, return_counts=True)
    assert values.tolist() == [-2, -1, 0, 1, 2]
    assert counts.min() > 330 and abs(np.mean(noise)) < 0.1  # about 400 each: uniform over the table


def test_a_non_empty_cell_never_reads_as_empty():
    assert min(cellkey.perturb(SECRET, [f"P{i}"]) for i in range(200)) == 1


def test_differencing_program_minus_site_gives_only_noise():
    """Issue 12: 21 enrolled in Recovery Mentoring, 11 of them at Westfield, the rest (10) at
    Downtown (the only two sites). Published with noise, 'program minus Westfield' is the true 10
    only by chance; over many such programs it misses in most and is off by up to 4."""
    rng = np.random.default_rng(12)
    errors = []
    for trial in range(500):
        ids = [f"T{trial}-{i}" for i in range(21)]
        westfield = ids[:11]
        downtown_true = 21 - 11
        guess = cellkey.perturb(SECRET, ids) - cellkey.perturb(SECRET, westfield)
        errors.append(guess - downtown_true)
        # asking again with the same filters gives the same numbers: no averaging the noise away
        assert cellkey.perturb(SECRET, list(rng.permutation(ids))) == cellkey.perturb(SECRET, ids)
    errors = np.array(errors)
    assert (errors == 0).mean() < 0.3 and set(np.unique(errors)) <= set(range(-4, 5)) and np.abs(errors).max() == 4


def test_the_secret_is_made_once_and_kept_in_the_store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        first = cell_key_secret(store)
        assert len(first) == 32 and cell_key_secret(store) == first
        assert store.rows("SELECT name FROM disclosure_meta") == [("cell_key_secret",)]  # schema step 8
    with Store.open(tmp_path / "s.duckdb") as store:
        assert cell_key_secret(store) == first
    with Store.open(tmp_path / "other.duckdb") as other:
        assert cell_key_secret(other) != first


def test_a_store_from_before_step_8_gets_a_secret_and_one_made_on_first_use_keeps_its_own(tmp_path):
    from analytics.store import migrations

    with Store.open(tmp_path / "old.duckdb") as store:  # as the release before: version 7, no table
        store.read().execute("DROP TABLE disclosure_meta")
        store.read().execute("DELETE FROM schema_version WHERE version = 8")
    with Store.open(tmp_path / "old.duckdb") as store:
        assert migrations.stored_version(store.read()) == 8 and len(cell_key_secret(store)) == 32
    with Store.open(tmp_path / "dev.duckdb") as store:  # a development build's table, made on first use
        store.read().execute("DELETE FROM schema_version WHERE version = 8")
        store.read().execute("UPDATE disclosure_meta SET value = $v", {"v": SECRET.hex()})
    with Store.open(tmp_path / "dev.duckdb") as store:
        assert cell_key_secret(store) == SECRET
