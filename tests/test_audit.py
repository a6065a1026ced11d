"""The audit log records imports (in the import's own transaction), exports and reports."""

from __future__ import annotations

import json

import pytest

from analytics.access import audit
from analytics.ingest.importer import import_files
from tests.conftest import TODAY


def test_import_is_logged_with_its_files_and_user(store, valid_dir):
    result = import_files(store, [valid_dir], today=TODAY, user="amira")
    log = audit.entries(store)
    assert list(log["action"]) == ["import"] and log.loc[0, "user_name"] == "amira"
    assert log.loc[0, "what"] == f"batch {result.batch_id}"
    assert sorted(json.loads(log.loc[0, "details"])["files"]) == sorted(f.name for f in result.files)


def test_a_refused_import_leaves_no_entry(store, valid_dir):
    (valid_dir / "participants.csv").write_text("participant_id,program\nP1,\n")
    assert import_files(store, [valid_dir], today=TODAY).problems
    assert audit.entries(store).empty


def test_entries_newest_first_with_details_as_json(store):
    audit.record(store, "export", "km.png", program=["A"], period=None)
    audit.record(store, "report", "report.pdf", user="gw")
    log = audit.entries(store)
    assert list(log["seq"]) == [2, 1] and list(log["action"]) == ["report", "export"]
    assert json.loads(log.loc[1, "details"]) == {"period": None, "program": ["A"]}
    assert list(audit.entries(store, action="export")["what"]) == ["km.png"]


def test_unknown_action_is_refused(store):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(store, "delete", "x")
