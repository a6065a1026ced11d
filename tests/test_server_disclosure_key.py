"""`copy-disclosure-key` from the embedded DuckDB file to the server store (PostgreSQL, tests/pg.py), as
a team moving to PostgreSQL runs it: the server then publishes the same perturbed counts as the file
did; one that already published with its own secret is refused; the secret is never printed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analytics.access import audit
from analytics.cli.main import main
from analytics.ingest import importer
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_data import small_store
from tests.pg import APP, OWNER, pg_db, pg_server  # noqa: F401  (fixtures)
from test_disclosure_key import TODAY, assert_never_shown, published, saved_export

pytestmark = pytest.mark.postgres


@pytest.fixture
def moving(tmp_path: Path, pg_db: str) -> tuple[Path, str]:  # noqa: F811
    """A DuckDB file and a new server store (the owner's address; the application's role set up as the
    README's setup does) holding the same 40 people."""
    source = small_store(tmp_path / "file", {"Recovery Mentoring": 13, "Community Peer Support": 27}, seed=5)
    source.close()
    url = pg_db.replace(f"{APP}@", f"{OWNER}@")
    with Store.open(url) as server:
        assert importer.import_files(server, [tmp_path / "file"], today=TODAY).ok
    return tmp_path / "file" / "store.duckdb", url


def test_after_moving_to_postgresql_the_server_publishes_the_files_counts(moving, capsys):
    source, url = moving
    with Store.open(source, read_only=True) as s, Store.open(url) as server:
        secret, own = cell_key_secret(s), cell_key_secret(server)
        before = published(server)
        expected = published(s)
    assert secret != own and any(not before[k].equals(expected[k]) for k in expected)

    assert main(["copy-disclosure-key", "--from", str(source), "--db", url]) == 0
    out = capsys.readouterr()
    assert "copied the cell-key secret" in out.out and out.err == ""
    with Store.open(url) as server:
        assert cell_key_secret(server) == secret
        after = published(server)
        events = audit.entries(server, action="disclosure_key")
    for name in expected:
        pd.testing.assert_frame_equal(after[name], expected[name])
    assert len(events) == 1 and str(source) in events.details[0]
    assert_never_shown(out.out + out.err + events.to_string() + events.details[0], secret, own)


def test_a_server_that_published_with_its_own_key_is_refused(moving, capsys):
    source, url = moving
    with Store.open(url) as server:
        saved_export(server)
        own, entries = cell_key_secret(server), audit.size(server)
    assert main(["copy-disclosure-key", "--from", str(source), "--db", url]) == 1
    err = capsys.readouterr().err
    assert "has 1 exports or reports" in err and "Nothing changed" in err
    with Store.open(url) as server:
        assert cell_key_secret(server) == own and audit.size(server) == entries
    assert main(["copy-disclosure-key", "--from", str(source), "--db", url, "--force"]) == 0
    out = capsys.readouterr()
    with Store.open(url) as server, Store.open(source, read_only=True) as s:
        assert cell_key_secret(server) == cell_key_secret(s)
        assert_never_shown(out.out + out.err + err, cell_key_secret(s), own)


def test_the_application_role_cannot_change_the_secret(moving, capsys):
    """The dashboard's role may only read disclosure_meta: the copy is the owner's, and refused cleanly."""
    source, url = moving
    app_url = url.replace(f"{OWNER}@", f"{APP}@")
    with Store.open(url) as server:
        own, entries = cell_key_secret(server), audit.size(server)
    assert main(["copy-disclosure-key", "--from", str(source), "--db", app_url]) == 2
    err = capsys.readouterr().err
    assert "refused to change its cell-key secret" in err and "owner" in err and "Nothing changed" in err
    with Store.open(url) as server:
        assert cell_key_secret(server) == own and audit.size(server) == entries
    assert_never_shown(err, own)
