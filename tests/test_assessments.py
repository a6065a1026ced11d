"""Recovery capital (issue 14): format 1.1 validation, definitions, truths of the synthetic
data, the CLI's JSON contract."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.analyses import assessments as A
from analytics.ingest import importer, synthetic
from analytics.outcomes.assessments import AssessmentSettings
from analytics.outcomes.filters import Filters
from analytics.stats.growth import fit_growth
from analytics.store.connection import Store
from tests.conftest import TODAY

HEADER = "participant_id,assessed_on,instrument," + ",".join(f"item_{i}" for i in range(1, 11)) + ",total"
ENROLLED = dt.date(2025, 3, 1)


def _write(folder: Path, rows: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "participants.csv").write_text(
        "participant_id,program,enrolled_on,exited_on,exit_reason\n"
        f"P-1,Peer,{ENROLLED},,\nP-2,Peer,{ENROLLED},2025-04-01,deceased\n")
    (folder / "assessments.csv").write_text("\n".join([HEADER, *rows]) + "\n")


def _day(k: int) -> str:
    return (ENROLLED + dt.timedelta(days=k)).isoformat()


TEN = ",".join(["3"] * 10)
BAD_ROWS = [  # (row, expected column, words of the message)
    (f"P-1,{_day(-31)},barc10,,,,,,,,,,,30", "assessed_on", "more than 30 days before"),
    (f"P-1,{_day(1)},barc10,,,,,,,,,,,", "total", "give all ten items"),
    (f"P-1,{_day(2)},barc10,3,3,,3,3,3,3,3,3,3,", "item_1", "some items are blank"),
    (f"P-1,{_day(3)},barc10,{TEN},31", "total", "does not equal the sum"),
    (f"P-1,{_day(4)},barc11,{TEN},", "instrument", "not an allowed value"),
    (f"P-1,{_day(5)},barc10,7,3,3,3,3,3,3,3,3,3,", "item_1", "out of range"),
    (f"P-1,{_day(6)},barc10,x,3,3,3,3,3,3,3,3,3,", "item_1", "not a whole number"),
    (f"P-1,2099-01-01,barc10,,,,,,,,,,,40", "assessed_on", "in the future"),
    (f"P-9,{_day(6)},barc10,,,,,,,,,,,40", "participant_id", "unknown participant"),
    (f"P-1,{_day(-30)},barc10,,,,,,,,,,,30", "participant_id, instrument, assessed_on", "duplicate key"),
    (f"P-1,{_day(8)},barc10,,,,,,,,,,,61", "total", "out of range"),
]


def test_every_problem_reported_at_once_and_nothing_written(tmp_path: Path, store: Store):
    good = [f"P-1,{_day(-30)},barc10,{TEN},30", f"P-1,{_day(180)},barc10,,,,,,,,,,,44",
            f"P-2,{_day(0)},barc10,{TEN},"]
    _write(tmp_path / "in", good + [r for r, _, _ in BAD_ROWS])
    result = importer.import_files(store, [tmp_path / "in"], today=TODAY)
    found = {(p.row, p.column): p.problem for p in result.problems}
    for offset, (_, column, words) in enumerate(BAD_ROWS):
        row = 2 + len(good) + offset  # header is row 1
        assert words in found.get((row, column), ""), (row, column, found)
    assert len(result.problems) == len(BAD_ROWS)
    assert store.scalar("SELECT count(*) FROM assessments") == 0
    assert store.scalar("SELECT count(*) FROM participants") == 0


def test_clean_file_lands_and_version_1_folders_still_load(tmp_path: Path, store: Store, valid_dir: Path):
    _write(tmp_path / "in", [f"P-1,{_day(-30)},barc10,{TEN},30", f"P-1,{_day(180)},barc10,,,,,,,,,,,44",
                             f"P-2,{_day(0)},BARC10,{TEN},"])
    result = importer.import_files(store, [tmp_path / "in"], today=TODAY)
    assert result.ok and result.counts["assessments"].new == 3
    assert store.scalar("SELECT count(*) FROM assessments WHERE instrument = 'barc10'") == 3
    (valid_dir / "assessments.csv").unlink()  # a version 1 folder: four files
    other = Store.open(tmp_path / "v1.duckdb")
    assert importer.import_files(other, [valid_dir], today=TODAY).ok
    assert other.scalar("SELECT count(*) FROM assessments") == 0
    other.close()


def test_store_refuses_disagreeing_items_and_total(store: Store):
    with pytest.raises(Exception, match="CHECK"):
        store.transaction().__enter__().execute(
            "INSERT INTO assessments VALUES ('P-1', DATE '2025-01-01', 'barc10', 3,3,3,3,3,3,3,3,3,3, 31)")


def test_schedule_definitions(tmp_path: Path, store: Store):
    """Baseline at -30; 6-month follow-up on day 180+/-30 done; 12-month window closed and missed;
    the deceased participant is not due; cutoff 2026-04-15."""
    _write(tmp_path / "in", [f"P-1,{_day(-30)},barc10,{TEN},30", f"P-1,{_day(-30 + 180 + 30)},barc10,,,,,,,,,,,44",
                             f"P-1,{_day(-30 + 365 + 31)},barc10,,,,,,,,,,,50",  # one day outside the window
                             f"P-2,{_day(0)},barc10,{TEN},"])
    assert importer.import_files(store, [tmp_path / "in"], today=TODAY).ok
    settings = AssessmentSettings(cutoff=dt.date(2026, 4, 15))
    frame = A.schedule_frame(store, Filters(), settings, settings.cutoff)
    p1 = frame[frame.participant_id == "P-1"].set_index("k")
    assert p1.loc[1, "done"] and p1.loc[1, "followup_total"] == 44
    assert p1.loc[2, "due"] and not p1.loc[2, "done"]
    assert not frame[frame.participant_id == "P-2"].due.any()  # died before the window
    r = A.analyse_assessments(store, Filters(), settings)
    assert (r.baseline_n, r.due, r.done) == (2, 2, 1)
    assert r.change.n == 1 and r.change.mean == 14
    soon = A.due_soon(store, Filters(), AssessmentSettings(cutoff=dt.date(2026, 1, 20)))
    assert list(soon.participant_id) == ["P-1"] and soon.followup[0] == 2  # window opens 2026-01-30


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Store:
    """5,000 simulated participants: enough to recover the truths within tight bounds."""
    folder = tmp_path_factory.mktemp("big")
    synthetic.write_sample(folder, participants=5000, seed=11)
    s = Store.open(folder / "store.duckdb")
    assert importer.import_files(s, [folder], today=TODAY).ok
    yield s
    s.close()


def test_truths_are_recovered(big_store: Store):
    truth = synthetic.TRUTH["assessments"]
    r = A.analyse_assessments(big_store)
    eng = r.engagement.set_index("term")
    # growth per mentoring session 0.2; meetings and check-ins none (association, adjusted)
    assert abs(eng.loc["mentoring", "coef"] - truth["growth_per_mentoring_session"]) < 0.03
    assert abs(eng.loc["meetings", "coef"]) < 0.01 and abs(eng.loc["checkins", "coef"]) < 0.03
    # the baseline distribution: mean 32 + 4 x E[log propensity / 0.7] = 32 - 4 x 0.35
    base = r.baselines.baseline_total
    expected = truth["baseline_mean"] - truth["baseline_per_sd_log_propensity"] * synthetic.PROPENSITY_SIGMA / 2
    assert abs(base.mean() - expected) < 0.4
    sd = np.sqrt(truth["baseline_sd"] ** 2 + truth["baseline_per_sd_log_propensity"] ** 2 + truth["measurement_sd"] ** 2)
    assert abs(base.std() - sd) < 0.4
    # those lost start lower, and the warning says so
    assert r.lost.difference < -2 and r.lost.p < 1e-6
    assert any("flatters the program" in w for w in r.warnings)
    # completers-only change overstates the latent change of everyone with a baseline
    latent = synthetic.assessment_latent(5000, seed=11)
    followed = latent.merge(r.pairs[["participant_id", "followup_total", "baseline_total"]], on="participant_id")
    assert abs(r.change.mean - followed.latent_change_180.mean()) < 0.5  # unbiased for those followed
    assert r.change.mean > latent.latent_change_180.mean() + 0.5  # ... but not for all
    assert r.growth is not None and r.growth.converged


def test_growth_model_recovers_a_simulated_truth():
    rng = np.random.default_rng(5)
    n = 3000
    b0 = rng.normal(0, 6, n)
    b1 = rng.normal(0, 0.3, n)
    rows = []
    for i in range(n):
        k = rng.integers(1, 5)
        t = np.sort(rng.uniform(-1, 24, k))
        rows.append(pd.DataFrame({"participant_id": i, "months": t,
                                  "total": 30 + b0[i] + (0.5 + b1[i]) * t + rng.normal(0, 2.5, k)}))
    g = fit_growth(pd.concat(rows))
    assert abs(g.slope - 0.5) < 0.03 and g.ci[0] < 0.5 < g.ci[1]
    assert abs(g.intercept - 30) < 0.4 and abs(g.sd_intercept - 6) < 0.4
    assert abs(g.sd_slope - 0.3) < 0.05 and abs(g.sd_residual - 2.5) < 0.15


def test_cli_json_has_exactly_the_issue_keys_and_equals_the_analysis(tmp_path: Path):
    folder = tmp_path / "s"
    synthetic.write_sample(folder, participants=400, seed=3)
    db = tmp_path / "s.duckdb"
    with Store.open(db) as s:
        assert importer.import_files(s, [folder], today=TODAY).ok
        direct = A.analyse_assessments(s).to_json()
    run = subprocess.run([sys.executable, "-m", "analytics", "assessments", "--db", str(db), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert list(got) == ["instrument", "baseline_n", "followup", "change", "by_group", "mixed_model", "warnings"]
    assert list(got["followup"]) == ["due", "done", "rate", "target"]
    assert list(got["change"]) == ["n", "mean", "ci", "p_t", "p_wilcoxon", "at_or_above_47"]
    assert list(got["change"]["at_or_above_47"]) == ["baseline", "followup", "p_mcnemar"]
    assert list(got["mixed_model"]) == ["slope_per_month", "ci"]
    assert got == json.loads(json.dumps(direct))
    assert got["followup"]["done"] <= got["followup"]["due"] and got["baseline_n"] > 100
    nobody = subprocess.run([sys.executable, "-m", "analytics", "assessments", "--db", str(db), "--program", "None"],
                            capture_output=True, text=True, timeout=300)
    assert nobody.returncode == 1
