"""`copy-disclosure-key` (analytics.cli.disclosure_key) between two embedded stores: after the copy both
stores publish the same perturbed counts for the same data; a destination that already published
with its own secret is refused (nothing changed) unless --force; the secret is never printed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from analytics.access import audit
from analytics.analyses import cohorts
from analytics.cli.main import main
from analytics.ingest import importer
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.filters import Filters
from analytics.publish import page_exports
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_data import small_store

TODAY = dt.date(2026, 11, 30)  # as small_store imports


def published(store: Store) -> dict[str, pd.DataFrame]:
    """What the Cohorts page's downloads publish: the perturbed trends and retention counts."""
    trends = cohorts.cohort_trends(store, Filters(), "quarter", keyed=True)
    cutoff = resolve_cutoff(store, OutcomeSettings())
    out = {m: page_exports.cohort_trends_export(trends, m, "quarter", Filters(), cutoff).table.values
           for m in ("used_share", "craving")}
    out["heatmap"] = page_exports.cohort_heatmap_export(cohorts.cohort_retention(store, Filters(), "quarter",
                                                                                keyed=True)).table.values
    return out


def saved_export(store: Store) -> None:
    """One audited download (the Cohorts page's), made with the store's current secret."""
    trends = cohorts.cohort_trends(store, Filters(), "quarter", keyed=True)
    page_exports.cohort_trends_export(trends, "used_share", "quarter", Filters(),
                                      resolve_cutoff(store, OutcomeSettings())).save(store, "csv")


def secret_of(path: Path | str) -> bytes:
    with Store.open(path, read_only=not str(path).startswith("postgresql")) as store:
        return cell_key_secret(store)


def assert_never_shown(text: str, *secrets: bytes) -> None:
    for secret in secrets:
        for chunk in (secret.hex(), secret.hex()[:16], secret.hex().upper()[:16], secret.hex()[-16:]):
            assert chunk not in text


@pytest.fixture
def two_stores(tmp_path: Path) -> tuple[Path, Path]:
    """The same 40 people in two stores, each with its own secret (as a team moving stores has)."""
    source = small_store(tmp_path / "old", {"Recovery Mentoring": 13, "Community Peer Support": 27}, seed=3)
    source.close()
    with Store.open(tmp_path / "new.duckdb") as dest:
        assert importer.import_files(dest, [tmp_path / "old"], today=TODAY).ok
    return tmp_path / "old" / "store.duckdb", tmp_path / "new.duckdb"


def test_after_the_copy_both_stores_publish_the_same_counts(two_stores, capsys):
    source, dest = two_stores
    old_dest = secret_of(dest)
    with Store.open(source, read_only=True) as s, Store.open(dest, read_only=True) as d:
        before_s, before_d = published(s), published(d)
        keys = [cohorts.cohort_trends(x, Filters(), "quarter", keyed=True).participants_key for x in (s, d)]
    assert secret_of(source) != old_dest and not keys[0].equals(keys[1])
    assert any(not before_s[k].equals(before_d[k]) for k in before_s)  # other noise before the copy

    assert main(["copy-disclosure-key", "--from", str(source), "--db", str(dest)]) == 0
    out = capsys.readouterr()
    assert f"copied the cell-key secret of {source} to {dest}" in out.out and out.err == ""

    assert secret_of(dest) == secret_of(source) != old_dest
    with Store.open(source, read_only=True) as s, Store.open(dest, read_only=True) as d:
        after_s, after_d = published(s), published(d)
        events = audit.entries(d, action="disclosure_key")
        assert audit.first_broken(d) is None
    for name in after_s:
        pd.testing.assert_frame_equal(after_d[name], after_s[name])
        pd.testing.assert_frame_equal(after_s[name], before_s[name])  # the source's files are unchanged
    assert len(events) == 1 and str(source) in events.details[0] and '"forced": false' in events.details[0]
    assert_never_shown(out.out + out.err + events.to_string() + events.details[0], secret_of(source), old_dest)

    assert main(["copy-disclosure-key", "--from", str(source), "--db", str(dest)]) == 0  # again: nothing to do
    assert "already has the cell-key secret" in capsys.readouterr().out


def test_a_destination_that_published_with_its_own_key_is_refused_unless_forced(two_stores, capsys):
    source, dest = two_stores
    with Store.open(dest) as d:
        saved_export(d)
        entries = audit.size(d)
    old = secret_of(dest)

    assert main(["copy-disclosure-key", "--from", str(source), "--db", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "has 1 exports or reports" in err and "Nothing changed" in err and "--force" in err
    with Store.open(dest, read_only=True) as d:
        assert cell_key_secret(d) == old and audit.size(d) == entries  # nothing changed, nothing logged

    assert main(["copy-disclosure-key", "--from", str(source), "--db", str(dest), "--force"]) == 0
    out = capsys.readouterr()
    assert "1 earlier outputs of the destination were made with its old secret" in out.out
    with Store.open(dest) as d:
        assert cell_key_secret(d) == secret_of(source)
        event = audit.entries(d, action="disclosure_key").iloc[0]
        assert '"forced": true' in event.details and '"outputs_with_old_key": 1' in event.details
        saved_export(d)  # published with the copied secret: a later copy of another secret is refused again
    assert_never_shown(out.out + out.err + err, secret_of(source), old)

    other = small_store(source.parent.parent / "other", {"Recovery Mentoring": 12}, seed=4)
    other.close()
    assert main(["copy-disclosure-key", "--from", str(other.path), "--db", str(dest)]) == 1
    assert "has 1 exports or reports" in capsys.readouterr().err
    assert secret_of(dest) == secret_of(source)


def test_the_same_store_or_a_missing_one_is_an_error(two_stores, capsys):
    source, dest = two_stores
    assert main(["copy-disclosure-key", "--from", str(dest), "--db", str(dest.parent / "." / dest.name)]) == 2
    assert "the same store" in capsys.readouterr().err
    missing = dest.parent / "missing.duckdb"
    assert main(["copy-disclosure-key", "--from", str(source), "--db", str(missing)]) == 2
    assert "no store at" in capsys.readouterr().err and not missing.exists()
