"""The report's recovery-capital sections perturbed (issue 12): every count (baseline people,
follow-ups due, done and missed, pairs, people at or above 47) is published as the cell key count of
its members, follow-up counts keyed per follow-up; rates and shares are the published counts'
ratios; and the LP auditor finds no hidden count it can narrow, on the sample and on small stores."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from analytics.analyses import assessments as A
from analytics.ingest import importer
from analytics.outcomes.assessments import AssessmentSettings
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.publish import assessments as published, cellkey, privacy, report
from analytics.publish.exports import ALL_ROW
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_auditor import Auditor, add_table
from disclosure_data import SAMPLE, TABLES, set_secret

pytestmark = pytest.mark.unit

T = privacy.DEFAULT_THRESHOLD
PERIOD = Period(dt.date(2025, 10, 1), dt.date(2026, 9, 30))
PROGRAMS = ["Recovery Mentoring", "Community Peer Support", "Online Recovery Community"]


def analysis(store: Store, period: Period, filters: Filters = Filters()) -> A.AssessmentResult:
    """The analysis the report's sections are built from (report.recovery_capital_sections)."""
    chosen = dataclasses.replace(filters, enrolled_to=period.end)
    return A.analyse_assessments(store, chosen, AssessmentSettings(cutoff=resolve_cutoff(store, OutcomeSettings())))


def tables(r: A.AssessmentResult, secret: bytes | None) -> tuple[privacy.Protected, privacy.Protected]:
    (_, _, rate), (_, _, change) = published.sections(r, T, "scope", secret)
    return rate.table, change.table


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from analytics.ingest.bootstrap import ensure_store

    store = Store.open(ensure_store(tmp_path_factory.mktemp("capital") / "s.duckdb"))
    set_secret(store, 2026)
    yield store
    store.close()


@pytest.fixture(scope="module")
def sample_report(sample) -> report.Report:
    return report.build(sample, PERIOD)


def capital_store(folder: Path, sizes: dict[str, int], seed: int) -> Store:
    """``sizes`` people per program drawn from the sample's 2025 enrollees (so follow-ups are due by
    the cutoff), with all their activity, imported into a fresh store."""
    rng = np.random.default_rng(seed)
    people = pd.read_csv(SAMPLE / "participants.csv", dtype=str, keep_default_na=False)
    pool = people[people.enrolled_on.str.startswith("2025")]
    picked = pool.iloc[rng.choice(len(pool), sum(sizes.values()), replace=False)].copy()
    picked["program"] = np.repeat(list(sizes), list(sizes.values()))
    folder.mkdir(parents=True, exist_ok=True)
    picked.to_csv(folder / "participants.csv", index=False)
    for name in TABLES:
        rows = pd.read_csv(SAMPLE / f"{name}.csv", dtype=str, keep_default_na=False)
        rows[rows.participant_id.isin(set(picked.participant_id))].to_csv(folder / f"{name}.csv", index=False)
    store = Store.open(folder / "store.duckdb")
    set_secret(store, seed)
    importer.import_files(store, [folder], today=dt.date(2026, 11, 30))
    return store


# --- the truth: members of each cell, from the schedule ------------------------------------

def members(r: A.AssessmentResult) -> dict[str, dict[str, pd.DataFrame]]:
    """Per published row (program, All): the rows behind each count (one per person, or one per
    follow-up for due/done/missed)."""
    s = r.schedule
    pairs = r.pairs
    cells = {"baseline_n": r.baselines, "due": s[s.due], "done": s[s.due & s.done], "missed": s[s.due & ~s.done],
             "n": pairs, "at_or_above_47_baseline": pairs[pairs.baseline_total >= 47],
             "below_47_baseline": pairs[pairs.baseline_total < 47],
             "at_or_above_47_followup": pairs[pairs.followup_total >= 47],
             "below_47_followup": pairs[pairs.followup_total < 47]}
    groups = sorted(s.program.unique())
    out = {g: {c: rows[rows.program == g] for c, rows in cells.items()} for g in groups}
    if len(groups) > 1:
        out[ALL_ROW] = cells
    return out


def keyed_count(secret: bytes, rows: pd.DataFrame) -> int:
    """The cell key count written out: the true count plus the noise of the sum of the rows' keys."""
    return cellkey.noisy(len(rows), sum(cellkey.record_key(secret, p) for p in rows.participant_id) % 2**64)


def check_counts(r: A.AssessmentResult, secret: bytes) -> tuple[int, int]:
    """Every count of both tables is its members' cell key count, within 2 of the true; hidden
    exactly where that count (or a complement) is; returns (shown, moved by the noise)."""
    shown = moved = 0
    truth = members(r)
    for p in tables(r, secret):
        assert set(p.perturbed) == set(p.counts)
        for group, row in p.values.iterrows():
            for c in p.counts:
                rows = truth[group][c]
                expected = keyed_count(secret, rows)
                if c != "due" and c != "done" and c != "missed":
                    assert expected == cellkey.perturb(secret, rows.participant_id)  # one row per person
                assert p.primary.loc[group, c] == (0 < expected < T), (group, c)
                if pd.isna(row[c]):
                    continue
                assert row[c] == expected, (group, c)
                assert abs(row[c] - len(rows)) <= cellkey.MAX_NOISE
                shown, moved = shown + 1, moved + (row[c] != len(rows))
    return shown, moved


def test_the_members_are_the_analysis_counts(sample):
    r = analysis(sample, PERIOD)
    truth = members(r)
    assert len(truth[ALL_ROW]["due"]) == r.due == 879 and len(truth[ALL_ROW]["done"]) == r.done == 455
    assert len(truth[ALL_ROW]["baseline_n"]) == r.baseline_n and len(truth[ALL_ROW]["n"]) == r.change.n
    for g in r.by_group:
        assert len(truth[g["group"]]["baseline_n"]) == g["baseline_n"]
        assert len(truth[g["group"]]["due"]) == g["followup"]["due"]
        assert len(truth[g["group"]]["done"]) == g["followup"]["done"]
        assert len(truth[g["group"]]["n"]) == g["change"]["n"]
    assert r.schedule[r.schedule.due].participant_id.duplicated().sum() > 100  # people with two due: keyed twice
    assert "schedule" not in r.to_json()


def test_every_published_count_is_the_cell_key_count_of_its_members(sample):
    shown, moved = check_counts(analysis(sample, PERIOD), cell_key_secret(sample))
    assert shown == 28 and moved > shown / 2  # 16 of the rate table, 12 of the change table; noise 0: 1 in 5


@pytest.mark.parametrize("site", ["Westfield", "Downtown", "Online"])
def test_counts_by_site_are_keyed_the_same_way(sample, site):
    shown, _ = check_counts(analysis(sample, PERIOD, Filters(sites=(site,))), cell_key_secret(sample))
    assert shown >= 5


def test_a_follow_up_count_adds_a_persons_key_once_per_follow_up():
    """Two follow-ups due for P-1 and one for P-2: the cell key is 2 key(P-1) + key(P-2), and the
    same follow-ups get the same count wherever they are counted (All of one program)."""
    secret = b"\x01" * 32
    rows = pd.DataFrame({"participant_id": ["P-1", "P-1", "P-2"], "program": ["A", "A", "A"]})
    key = (2 * cellkey.record_key(secret, "P-1") + cellkey.record_key(secret, "P-2")) % 2**64
    counts = published.published_counts(secret, rows, pd.Index(["A", ALL_ROW]))
    assert counts["A"] == counts[ALL_ROW] == cellkey.noisy(3, key)
    assert key != cellkey.cell_key(secret, ["P-1", "P-2"])  # not a count of people
    assert published.published_counts(secret, rows.iloc[:0], pd.Index(["A"]))["A"] == 0


def test_the_report_publishes_the_keyed_sections(sample, sample_report):
    """report.build passes the store's secret: its sections are sections(r, secret)."""
    r = analysis(sample, PERIOD)
    rate, change = tables(r, cell_key_secret(sample))
    shown = {s.title: s.exports[0].table for s in sample_report.sections if s.exports}
    pd.testing.assert_frame_equal(shown["Follow-up rate"].values, rate.values)
    pd.testing.assert_frame_equal(shown["Recovery capital change"].values, change.values)
    assert shown["Follow-up rate"].perturbed == published.RATE_COUNTS
    assert "recovery capital" in cellkey.METHOD


def test_rates_and_shares_are_the_published_ratios(sample):
    """A rate or share of the true counts beside perturbed ones would give the true counts back:
    each is the published done / due or at or above / n (at most 100%)."""
    shares = moved = 0
    for seed in (1, 2, 3):
        secret = set_secret(sample, seed)
        r = analysis(sample, PERIOD)
        rate, change = (p.values for p in tables(r, secret))
        np.testing.assert_array_equal(rate.rate, (rate.done / rate.due).clip(upper=1))
        true_rate = pd.Series({g["group"]: g["followup"]["rate"] for g in r.by_group} | {ALL_ROW: r.rate})
        assert (rate.rate != true_rate.reindex(rate.index)).sum() >= 2  # so a true rate fails the line above
        for when in ("baseline", "followup"):
            share, count = change[f"share_47_{when}"], change[f"at_or_above_47_{when}"]
            np.testing.assert_array_equal(share.dropna(), (count / change.n).clip(upper=1)[share.notna()])
        true_share = r.pairs.groupby("program").followup_total.apply(lambda x: (x >= 47).mean())
        true_share[ALL_ROW] = r.change.share_followup
        shown = change.share_47_followup.dropna()
        shares, moved = shares + len(shown), moved + int((shown != true_share[shown.index]).sum())
    assert shares >= 4 and moved >= shares / 2
    set_secret(sample, 2026)


def test_a_rate_of_the_true_counts_would_fail(sample, monkeypatch):
    """Switch the published ratio off (rate of the true done and due): the check above fails."""
    secret = cell_key_secret(sample)
    r = analysis(sample, PERIOD)
    monkeypatch.setattr(published, "_ratio", lambda num, den: pd.Series(
        {g["group"]: g["followup"]["rate"] for g in r.by_group} | {ALL_ROW: r.rate}).reindex(num.index)
        if num.name == "done" else (num / den.where(den > 0)).clip(upper=1))
    rate = tables(r, secret)[0].values
    assert not np.array_equal(rate.rate, (rate.done / rate.due).clip(upper=1))


def test_means_cis_and_p_values_are_the_true_estimates_rounded_as_printed(sample):
    """A full-precision mean times the true n is a whole number (it would tell n among the perturbed
    n's candidates): published at the report's precision."""
    r = analysis(sample, PERIOD)
    change = tables(r, cell_key_secret(sample))[1].values
    c = r.change
    assert (change.loc[ALL_ROW, "mean_change"], change.loc[ALL_ROW, "ci_low"], change.loc[ALL_ROW, "ci_high"]) == (
        round(c.mean, 1), round(c.ci[0], 2), round(c.ci[1], 2))
    assert change.loc[ALL_ROW, "p_t"] == float(f"{c.p_t:.2g}")
    assert 0 < change.loc[ALL_ROW, "p_t"] < 0.0005 and c.p_t < 0.0005  # never written as 0.0 in a file
    assert round(c.mean * c.n) == pytest.approx(c.mean * c.n, abs=1e-9)  # the reason


# --- the auditor ---------------------------------------------------------------------------

def audit_capital(rate: privacy.Protected, change: privacy.Protected) -> list[str]:
    """Both tables and what a reader knows among them: programs add up to All, done + missed = due,
    at or above 47 <= n (the rest: below 47), pairs <= baseline people (the pairs have a baseline)."""
    aud = Auditor(T)
    total = ALL_ROW if ALL_ROW in rate.values.index else None
    add_table(aud, rate, "rate", total_row=total)
    add_table(aud, change, "change", total_row=total)
    for g in rate.values.index:
        aud.equal({f"rate:done:{g}": 1, f"rate:missed:{g}": 1, f"rate:due:{g}": -1})
        for when in ("baseline", "followup"):
            aud.equal({f"change:at_or_above_47_{when}:{g}": 1, f"change:below_47_{when}:{g}": 1,
                       f"change:n:{g}": -1})
        aud.equal({f"change:n:{g}": 1, f"unpaired:{g}": 1, f"rate:baseline_n:{g}": -1})
    # the pairs' complement in the baseline people is a relation here, not a cell the tables publish
    # or hide (it mixes those not yet due with those lost): it narrows the hidden cells, and is not
    # judged itself. Below 47 is a published cell (hidden with complements when small): judged.
    return [f for f in aud.failures() if not f.startswith("unpaired:")]


def test_the_sample_report_sections_pass_the_audit(sample_report):
    shown = {s.title: s.exports[0].table for s in sample_report.sections if s.exports}
    assert audit_capital(shown["Follow-up rate"], shown["Recovery capital change"]) == []


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.sampled_from([(13, 27), (5, 35), (9, 14, 20), (40,), (12, 30), (20, 20)]),
       seed=st.integers(0, 10_000))
@example(sizes=(20, 20), seed=1)  # n 12 with none at or above 47: below 47 = n, within the noise of n
def test_small_stores_pass_the_audit(tmp_path_factory, sizes, seed):
    store = capital_store(tmp_path_factory.mktemp("cap"), dict(zip(PROGRAMS, sizes)), seed)
    try:
        period = Period(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        try:
            r = analysis(store, period)
        except A.NoAssessments:
            return
        check_counts(r, cell_key_secret(store))
        assert audit_capital(*tables(r, cell_key_secret(store))) == []
    finally:
        store.close()


def test_the_audit_fails_when_complementary_suppression_is_off(tmp_path_factory, monkeypatch):
    """A program of 5 beside one of 35: its hidden counts are read off All minus the other program
    (to within the noise) once no complement is hidden."""
    store = capital_store(tmp_path_factory.mktemp("off"), {PROGRAMS[0]: 5, PROGRAMS[1]: 35}, 7)
    try:
        r = analysis(store, Period(dt.date(2025, 1, 1), dt.date(2025, 12, 31)))
        secret = cell_key_secret(store)
        assert audit_capital(*tables(r, secret)) == []
        monkeypatch.setattr(privacy, "_pick", lambda *a: None)
        failures = audit_capital(*tables(r, secret))
        assert any(f.startswith(f"rate:baseline_n:{PROGRAMS[0]}") for f in failures), failures
    finally:
        store.close()
