"""The retention and sobriety definitions of docs/outcome-definitions.md, on hand-made records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analytics.ingest import importer
from analytics.outcomes.definitions import OutcomeSettings, durations
from analytics.store.connection import Store

CUTOFF = dt.date(2025, 6, 30)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "participants.csv").write_text(
        "participant_id,program,enrolled_on,sobriety_start,exited_on,exit_reason\n"
        "DROP,A,2025-01-01,,2025-02-01,dropped_out\n"      # recorded dropout: event on exited_on
        "DONE,A,2025-01-01,,2025-04-01,completed\n"        # completed: censored on exited_on
        "MOVE,B,2025-01-01,,2025-03-01,transferred\n"      # other exit: censored, competing
        "SILENT,A,2025-01-01,2024-12-01,,\n"               # last engagement 2025-03-10 -> left then
        "ACTIVE,B,2025-01-01,,,\n"                         # engaged 2025-06-20 -> censored at cutoff
        "NEVER,B,2025-06-10,,,\n"                          # enrolled 20 days ago, never came: censored
        "GHOST,B,2025-03-01,,,\n"                          # never came, long ago: left on day 0
        "LATE,A,2025-01-01,,2025-09-01,dropped_out\n"      # exit after the cutoff: not yet known
        "FUTURE,A,2025-08-01,,,\n")                        # enrolled after the cutoff: left out
    (folder / "attendance.csv").write_text(
        "participant_id,attended_on,meeting_type,modality\n"
        "SILENT,2025-03-10,aa,in_person\nACTIVE,2025-06-20,na,online\nLATE,2025-06-25,aa,in_person\n")
    (folder / "checkins.csv").write_text(
        "participant_id,checked_in_on,used\n"
        "SILENT,2025-01-05,false\nSILENT,2025-02-01,true\nACTIVE,2025-02-01,false\n")
    s = Store.open(tmp_path / "s.duckdb")
    assert importer.import_files(s, [folder], today=dt.date(2025, 12, 31)).ok
    yield s
    s.close()


def test_retention(store: Store):
    d = durations(store, "retention", OutcomeSettings(cutoff=CUTOFF))
    got = {r.participant_id: (r.days, r.event, r.event_type) for r in d.frame.itertuples()}
    assert got == {
        "DROP": (31, True, "dropped_out"),
        "DONE": (90, False, "completed"),
        "MOVE": (59, False, "other_exit"),
        "SILENT": (68, True, "dropped_out"),
        "ACTIVE": (180, False, "censored"),
        "NEVER": (20, False, "censored"),
        "GHOST": (0, True, "dropped_out"),
        "LATE": (180, False, "censored"),
    }
    assert d.left_out == {"enrolled after the cutoff": 1}


def test_inactivity_days_is_a_setting(store: Store):
    d = durations(store, "retention", OutcomeSettings(cutoff=CUTOFF, inactivity_days=120))
    got = {r.participant_id: (r.days, r.event) for r in d.frame.itertuples()}
    assert got["SILENT"] == (180, False) and got["GHOST"] == (0, True)


def test_sobriety(store: Store):
    d = durations(store, "sobriety", OutcomeSettings(cutoff=CUTOFF))
    got = {r.participant_id: (r.days, r.event) for r in d.frame.itertuples()}
    # SILENT's recovery started 2024-12-01: relapse reported 2025-02-01 -> 62 days
    assert got == {"SILENT": (62, True), "ACTIVE": (31, False)}
    assert d.left_out == {"no check-in on or after the sobriety start": 6, "enrolled after the cutoff": 1}


def test_bad_settings_are_refused(store: Store):
    with pytest.raises(ValueError, match="inactivity_days"):
        OutcomeSettings(inactivity_days=0)
    with pytest.raises(ValueError, match="unknown outcome"):
        durations(store, "happiness")
