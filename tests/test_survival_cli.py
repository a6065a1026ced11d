"""The survival CLI: its JSON contract, its filters and its messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.cli.main import build_parser
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import OutcomeSettings, durations
from analytics.store.connection import Store
from analytics.analyses.survival import NoData, analyse

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return ensure_store(tmp_path_factory.mktemp("cli") / "sample.duckdb")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics", "survival", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_json_contract(db: Path):
    out = cli("--outcome", "retention", "--by", "program", "--adjust", "age_band", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"outcome", "by", "n", "events", "left_out", "groups", "logrank", "cox", "ph_test"} <= set(doc)
    assert doc["outcome"] == "retention" and doc["by"] == "program"
    group = doc["groups"][0]
    assert set(group) == {"group", "n", "events", "median_days", "median_ci", "survival", "rmst"}
    assert set(group["survival"]) == {"30", "90", "180", "365"}
    assert set(group["rmst"]) == {"horizon", "value", "ci"}
    assert set(doc["logrank"]) == {"chi2", "df", "p"} and doc["logrank"]["df"] == 2
    assert {t["term"] for t in doc["cox"]} == {"program", "age_band"}
    assert all(set(t) == {"term", "level", "reference", "hr", "ci", "p"} for t in doc["cox"])
    assert doc["ph_test"][-1]["term"] == "GLOBAL"
    # the same numbers as the library function
    with Store.open(db, read_only=True) as store:
        lib = analyse(store, "retention", by="program", adjust=["age_band"]).to_json()
    assert doc["n"] == lib["n"] and doc["events"] == lib["events"]
    assert [g["median_days"] for g in doc["groups"]] == [g["median_days"] for g in lib["groups"]]
    assert doc["logrank"]["chi2"] == pytest.approx(lib["logrank"]["chi2"], rel=1e-12)


def test_filters_cutoff_and_inactivity_change_the_numbers(db: Path):
    base = json.loads(cli("--outcome", "retention", "--db", str(db), "--json").stdout)
    one = json.loads(cli("--outcome", "retention", "--db", str(db), "--json",
                         "--program", "Recovery Mentoring").stdout)
    assert one["n"] < base["n"]
    early = json.loads(cli("--outcome", "retention", "--db", str(db), "--json", "--cutoff", "2025-12-31").stdout)
    assert early["n"] < base["n"] and early["cutoff"] == "2025-12-31"
    lenient = json.loads(cli("--outcome", "retention", "--db", str(db), "--json", "--inactivity-days", "90").stdout)
    assert lenient["events"] < base["events"] and lenient["inactivity_days"] == 90
    window = json.loads(cli("--outcome", "sobriety", "--db", str(db), "--json", "--enrolled-from", "2025-01-01",
                            "--enrolled-to", "2025-06-30").stdout)
    with Store.open(db, read_only=True) as store:
        d = durations(store, "sobriety", filters=Filters(enrolled_from=__import__("datetime").date(2025, 1, 1),
                                                          enrolled_to=__import__("datetime").date(2025, 6, 30)))
    assert window["n"] == d.n and window["left_out"] == d.left_out


def test_sobriety_reports_who_was_left_out(db: Path):
    doc = json.loads(cli("--outcome", "sobriety", "--db", str(db), "--json").stdout)
    assert doc["left_out"].get("no check-in on or after the sobriety start", 0) > 0
    assert doc["logrank"] is None and doc["cox"] == []


def test_a_filter_that_leaves_nobody_is_a_message_not_a_crash(db: Path):
    out = cli("--outcome", "retention", "--program", "No Such Program", "--db", str(db))
    assert out.returncode == 1 and "no participants to analyse" in out.stderr
    assert "Traceback" not in out.stderr
    with Store.open(db, read_only=True) as store, pytest.raises(NoData):
        analyse(store, "retention", filters=Filters(programs=("No Such Program",)))


def test_bad_arguments_are_refused(db: Path):
    assert cli("--outcome", "happiness", "--db", str(db)).returncode == 2
    bad = cli("--outcome", "retention", "--adjust", "shoe_size", "--db", str(db))
    assert bad.returncode == 2 and "cannot group by 'shoe_size'" in bad.stderr
    assert cli("--outcome", "retention", "--cutoff", "yesterday", "--db", str(db)).returncode == 2


def test_outcome_defaults_to_retention_and_the_help_says_so(db: Path):
    plain, named = cli("--db", str(db), "--json"), cli("--outcome", "retention", "--db", str(db), "--json")
    assert plain.returncode == 0, plain.stderr
    doc = json.loads(plain.stdout)
    assert doc["outcome"] == "retention" and doc["n"] == json.loads(named.stdout)["n"] > 0
    parser = build_parser()
    assert parser.parse_args(["engagement"]).outcome == "retention"
    helps = [subprocess.run([sys.executable, "-m", "analytics", cmd, "--help"], cwd=REPO, capture_output=True,
                            text=True).stdout for cmd in ("survival", "engagement")]
    assert all("(default retention)" in h for h in helps)


def test_text_report_is_readable(db: Path):
    out = cli("--outcome", "retention", "--by", "program", "--db", str(db))
    assert out.returncode == 0
    assert "Log-rank: chi2 =" in out.stdout and "median (95% CI)" in out.stdout
    assert "Associations are not proof of cause" in out.stdout


def test_relapse_on_day_zero_is_an_event_at_day_zero(tmp_path: Path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "participants.csv").write_text(
        "participant_id,program,enrolled_on\nP-1,A,2025-01-01\nP-2,A,2025-01-01\nP-3,A,2025-01-01\n")
    (folder / "checkins.csv").write_text(
        "participant_id,checked_in_on,used\nP-1,2025-01-01,true\nP-2,2025-01-05,false\nP-2,2025-01-09,true\n")
    from analytics.ingest import importer
    with Store.open(tmp_path / "s.duckdb") as store:
        assert importer.import_files(store, [folder]).ok
        d = durations(store, "sobriety", OutcomeSettings(cutoff=__import__("datetime").date(2025, 3, 1)))
    frame = d.frame.set_index("participant_id")
    assert frame.loc["P-1", ["days", "event"]].tolist() == [0, True]
    assert frame.loc["P-2", ["days", "event"]].tolist() == [8, True]
    assert d.left_out == {"no check-in on or after the sobriety start": 1}


def test_incidence_is_skipped_on_request_only(db: Path):
    with Store.open(db, read_only=True) as store:
        full, lean = analyse(store, "retention", by="program"), analyse(store, "retention", by="program",
                                                                         incidence=False)
    assert full.incidence is not None and len(full.incidence) > 0 and lean.incidence is None
    assert lean.to_json() == full.to_json()
