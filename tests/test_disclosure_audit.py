"""The auditor (tests/disclosure_auditor.py) over the outcome report: no hidden count of the
report can be narrowed below the "<11" marker's range by combining what it publishes, on the
sample and on random small programs; and the auditor does catch a leak when one suppression
rule is switched off."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from analytics.analyses.cohorts import month_day
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.publish import cellkey, disclosure, privacy, report
from analytics.publish.disclosure import ALL
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_auditor import Auditor, actuarial_of, add_life_table, add_table, candidates, median_of
from disclosure_data import set_secret, small_store
from tests import cellkey_truth as truth

PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30))
T = privacy.DEFAULT_THRESHOLD


def audit_report(r: report.Report, skip: tuple[str, ...] = ()) -> list[str]:
    """Every count the report publishes, with the relations among them, through the auditor."""
    aud = Auditor(r.threshold)
    tables = {s.title: s.exports[0].table for s in r.sections if s.exports}
    add_table(aud, tables["People served"], "program")
    add_table(aud, tables["Engagement dose"], "program")
    add_table(aud, tables["Outcomes by program"], "program",
              rates={"share_reporting_use": ("checkins_reporting_use", "checkins")})
    for name, lt in r.life_tables.items():
        if name in skip:
            continue
        groups = sorted([g for g in lt.groups if g != ALL] + list(lt.hidden))
        add_life_table(aud, lt, groups, name)
        if name == "retention":  # enrolled in the period per program: the same people as new enrollments
            for g in groups:
                aud.same(f"retention:at_risk:{g}:0", f"program:new_enrollments:{g}")
    return aud.failures()


def test_auditor_finds_the_issue_differencing():
    """Issue 12's page: All at risk 24, Peer Support 15 shown, Mentoring hidden: 9 is read off."""
    aud = Auditor(T)
    aud.publish("all", 24)
    aud.publish("peer", 15)
    aud.var("mentoring", 1, T - 1)
    aud.equal({"peer": 1, "mentoring": 1, "all": -1})
    assert aud.ranges()["mentoring"] == (9, 9)
    assert aud.failures() == ["mentoring: between 9 and 9"]


def test_auditor_passes_a_well_protected_table():
    table = pd.DataFrame({"n": [40, 5, 30, 75]}, index=["A", "B", "C", ALL])
    aud = Auditor(T)
    add_table(aud, privacy.protect(table, counts=["n"], total_row=ALL), "t")
    assert aud.failures() == []


def test_auditor_fails_when_complementary_suppression_is_off(monkeypatch):
    """Switch one rule off (no complement is ever picked): the auditor reads the hidden count."""
    table = pd.DataFrame({"n": [40, 5, 30, 75]}, index=["A", "B", "C", ALL])
    monkeypatch.setattr(privacy, "_pick", lambda *a: None)
    aud = Auditor(T)
    add_table(aud, privacy.protect(table, counts=["n"], total_row=ALL), "t")
    assert aud.failures() == ["t:n:B: between 5 and 5"]


def _three_programs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    group = np.array(["Mentoring"] * 5 + ["Online"] * 12 + ["Peer Support"] * 30)
    return rng.integers(0, 400, group.size), rng.random(group.size) < 0.5, group


def test_life_table_passes_with_its_complement():
    days, event, group = _three_programs()
    lt = disclosure.life_table(days, event, group, (30, 90, 180, 365), T)
    assert lt.hidden == ("Mentoring", "Online")  # 5 is hidden, so 12 is too: else All - 30 = 5
    aud = Auditor(T)
    add_life_table(aud, lt, ["Mentoring", "Online", "Peer Support"], "r")
    assert aud.failures() == []


def test_auditor_fails_when_the_group_complement_is_off(monkeypatch):
    """Switch the life table's complementary rule off (hide only groups under the threshold)."""
    monkeypatch.setattr(disclosure, "_shown_groups", lambda sizes, hide, t: sorted(g for g, n in sizes.items()
                                                                                 if n >= t))
    days, event, group = _three_programs()
    lt = disclosure.life_table(days, event, group, (30, 90, 180, 365), T)
    aud = Auditor(T)
    add_life_table(aud, lt, ["Mentoring", "Online", "Peer Support"], "r")
    assert "r:at_risk:Mentoring:0: between 5 and 5" in aud.failures()


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> report.Report:
    from analytics.ingest.bootstrap import ensure_store
    from analytics.store.connection import Store

    store = Store.open(ensure_store(tmp_path_factory.mktemp("audit") / "s.duckdb"))
    set_secret(store, 2026)
    yield report.build(store, Period(dt.date(2025, 10, 1), dt.date(2026, 9, 30)))
    store.close()


def test_the_sample_report_passes_the_audit(sample_report):
    assert audit_report(sample_report) == []


def test_every_life_table_count_is_zero_or_at_least_the_threshold(sample_report):
    for lt in sample_report.life_tables.values():
        for g in lt.groups:
            for v in [*lt.at_risk[g], *lt.events[g], *lt.censored[g]]:
                assert v == 0 or v >= T


def test_the_same_statistic_is_hidden_everywhere(sample_report):
    """Retained at 90 days and median sober days in "Outcomes by program" equal the Retention and
    Sobriety sections' values, blank exactly where those are blank."""
    tables = {s.title: s.exports[0].table.values for s in sample_report.sections if s.exports}
    by_program = tables["Outcomes by program"]
    for col, section, source in (("retained_90", "Retention", "survival_90"),
                                 ("median_sober_days", "Sobriety", "median_days")):
        there = tables[section][source].reindex(by_program.index)
        pd.testing.assert_series_equal(by_program[col], there, check_names=False)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.sampled_from([(13, 27), (27, 13), (12, 30), (5, 35), (11, 11), (40,), (9, 14, 20)]),
       seed=st.integers(0, 10_000), one_program=st.booleans())
def test_small_programs_pass_the_audit(tmp_path_factory, sizes, seed, one_program):
    names = ["Recovery Mentoring", "Community Peer Support", "Online Recovery Community"][:len(sizes)]
    store = small_store(tmp_path_factory.mktemp("small"), dict(zip(names, sizes)), seed)
    try:
        filters = Filters(programs=(names[0],)) if one_program else Filters()
        try:
            r = report.build(store, PERIOD, filters)
        except report.TooFew:
            return
        assert audit_report(r) == []
    finally:
        store.close()


def test_two_small_hidden_groups_hide_with_a_larger_one(monkeypatch):
    """Hypothesis found it: quarters of 11, 7 and 9 with All = 27: the two "<11" rows add up to 16,
    so each is 6 to 10. Now no quarter is listed; with the rule off the auditor reads 6..10."""
    group = np.array(["Q1"] * 11 + ["Q2"] * 7 + ["Q3"] * 9)
    days, event = np.arange(group.size) * 7, np.zeros(group.size, dtype=bool)
    lt = disclosure.life_table(days, event, group, (30, 90), T)
    assert lt.groups == (ALL,) and lt.hidden == ()
    aud = Auditor(T)
    add_life_table(aud, lt, [], "c")
    assert aud.failures() == []
    monkeypatch.setattr(disclosure, "_hidden_safe", lambda hidden, t: sum(hidden) == 0 or sum(hidden) >= t)
    lt = disclosure.life_table(days, event, group, (30, 90), T)
    aud = Auditor(T)
    add_life_table(aud, lt, ["Q1", "Q2", "Q3"], "c")
    assert aud.failures() == ["c:at_risk:Q2:0: between 6 and 10", "c:at_risk:Q3:0: between 6 and 10"]


def _two_programs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """27 and 13 people: the 27 have 11 drop-outs in the first month, the 13 have 3."""
    group = np.array(["Peer"] * 27 + ["Mentoring"] * 13)
    days = np.r_[np.full(11, 10), np.full(16, 200), np.full(3, 10), np.full(10, 200)]
    return days, np.ones(group.size, dtype=bool), group


def test_each_group_has_its_own_grid_and_the_complement_holds(monkeypatch):
    """All (14 drop-outs by day 30) publishes day 30; the 27-person program does not, since then
    All minus it would show the 13-person program's 3. With both checks (the complement rule and
    the library's own LP audit) off, the auditor reads 3."""
    days, event, group = _two_programs()
    lt = disclosure.life_table(days, event, group, (30, 90, 180, 270), T)
    assert lt.grids[ALL] == (0, 30, 90, 180) and lt.grids["Peer"] == (0,) and lt.grids["Mentoring"] == (0,)
    aud = Auditor(T)
    add_life_table(aud, lt, ["Mentoring", "Peer"], "r")
    assert aud.failures() == []
    monkeypatch.setattr(disclosure, "_complements_ok", lambda *a: True)
    monkeypatch.setattr(disclosure, "_leaks", lambda *a: False)
    lt = disclosure.life_table(days, event, group, (30, 90, 180, 270), T)
    assert lt.grids["Peer"] == (0, 30, 90, 180)
    aud = Auditor(T)
    add_life_table(aud, lt, ["Mentoring", "Peer"], "r")
    assert "r:events:Mentoring:0: between 3 and 3" in aud.failures()


def test_what_the_markers_alone_imply_is_not_a_leak():
    """All "<11" over two "<11" parts: each part is 1 to 9 from the markers alone; no published
    number narrows it, so no failure. Publishing the total (16) does narrow them: 6 to 10."""
    aud = Auditor(T)
    for n in ("a", "b", "all"):
        aud.var(n, 1, T - 1)
    aud.equal({"a": 1, "b": 1, "all": -1})
    assert aud.ranges()["a"] == (1, 9) and aud.failures() == []
    aud = Auditor(T)
    aud.var("a", 1, T - 1)
    aud.var("b", 1, T - 1)
    aud.publish("all", 16)
    aud.equal({"a": 1, "b": 1, "all": -1})
    assert aud.failures() == ["a: between 6 and 10", "b: between 6 and 10"]


# --- issue 12, item 5: differencing across requests --------------------------------------------

MENTORING = "Recovery Mentoring"


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    """Recovery Mentoring: 14 people at Westfield and 7 at Downtown (the only two sites); another
    program of 20 at Westfield. Everyone enrolled in 2026, inside PERIOD."""
    store = small_store(tmp_path_factory.mktemp("sites"), {MENTORING: 21, "Community Peer Support": 20}, 12,
                        sites=["Westfield"] * 14 + ["Downtown"] * 7 + ["Westfield"] * 20)
    yield store
    store.close()


def _new_enrollments(r: report.Report) -> object:
    """Recovery Mentoring's new enrollments as the People served table publishes them."""
    return section_table(r, "People served").display().loc[MENTORING, "new_enrollments"]


def section_table(r: report.Report, title: str) -> privacy.Protected:
    return next(s for s in r.sections if s.title == title).exports[0].table


def test_differencing_two_requests_gives_only_noise(two_sites):
    """The issue's attack through the real report (= the Published charts page): new enrollments for
    the program, then for its big site; the difference is the hidden Downtown count (7) only by
    chance of the noise. Asking again returns the same numbers, so the noise cannot be averaged away.
    Over 12 stores' secrets the difference misses 7 in most and is never off by more than 4."""
    errors = []
    for seed in range(12):
        secret = set_secret(two_sites, seed)
        program = report.build(two_sites, PERIOD, Filters(programs=(MENTORING,)))
        site = report.build(two_sites, PERIOD, Filters(sites=("Westfield",)))
        whole, westfield = _new_enrollments(program), _new_enrollments(site)
        assert isinstance(whole, int) and isinstance(westfield, int)  # 21 and 14: both published
        assert section_table(site, "People served").display().loc[ALL, "new_enrollments"] != "<11"
        ids = truth.new_enrollments(two_sites, PERIOD.start, PERIOD.end, programs=(MENTORING,))
        west = truth.new_enrollments(two_sites, PERIOD.start, PERIOD.end, programs=(MENTORING,), sites=("Westfield",))
        assert (len(ids), len(west)) == (21, 14)
        assert (whole, westfield) == (cellkey.perturb(secret, ids), cellkey.perturb(secret, west))
        errors.append(whole - westfield - 7)
        again = report.build(two_sites, PERIOD, Filters(sites=("Westfield",)))
        assert _new_enrollments(again) == westfield  # the same cell, the same noise: no averaging
        # the same people in another section of the same request get the same noise: retention's n
        retention = section_table(program, "Retention").values
        assert retention.loc[retention.index[-1], "n"] == whole
    assert sum(e == 0 for e in errors) <= 6 and max(abs(e) for e in errors) <= 4 and len(set(errors)) >= 3


def test_keys_summed_in_sql_equal_the_members_keys(two_sites):
    """The cell keys DuckDB sums beside the counts are the Python keys of the same members."""
    from analytics.access import roles as access
    from analytics.analyses import kpis

    set_secret(two_sites, 99)
    secret = cell_key_secret(two_sites)
    with access.acting_as(access.system_for(None)):
        table = kpis.by_program(two_sites, Filters(sites=("Downtown",)), PERIOD, keyed=True).set_index("program")
    ids = truth.new_enrollments(two_sites, PERIOD.start, PERIOD.end, sites=("Downtown",))
    assert table.loc[MENTORING, "new_enrollments"] == len(ids) == 7
    assert int(table.loc[MENTORING, "new_enrollments_key"]) == cellkey.cell_key(secret, ids)
    active = truth.active(two_sites, PERIOD.start, PERIOD.end, programs=(MENTORING,), sites=("Downtown",))
    assert int(table.loc[MENTORING, "active_key"]) == cellkey.cell_key(secret, active)


def test_the_report_audit_fails_when_complementary_suppression_is_off(monkeypatch, tmp_path_factory):
    """With perturbed counts the auditor still catches a leak: 5 people in one program hidden, the
    total and the other program published; without a complement the range of the 5 shrinks to
    the noise's (at most 8 wide)."""
    store = small_store(tmp_path_factory.mktemp("off"), {MENTORING: 5, "Community Peer Support": 35}, 7)
    try:
        assert audit_report(report.build(store, PERIOD)) == []
        monkeypatch.setattr(privacy, "_pick", lambda *a: None)
        failures = audit_report(report.build(store, PERIOD))
        assert any(f.startswith(f"program:new_enrollments:{MENTORING}") for f in failures), failures
    finally:
        store.close()


# --- issue 12: survival of the published (perturbed) counts only --------------------------------

SECTIONS = {"retention": "Retention", "sobriety": "Sobriety", "cohorts": "Cohort comparison"}


def test_every_published_survival_is_a_function_of_the_published_counts(sample_report):
    """Each life table of the report (perturbed): every survival, curve point and median equals the
    actuarial value of its published at risk, events and censored (written out here), and the
    tables (Retention, Sobriety, Cohort comparison, Outcomes by program) print those values."""
    tables = {s.title: s.exports[0].table.values for s in sample_report.sections if s.exports}
    checked = 0
    for name, lt in sample_report.life_tables.items():
        assert lt.noise == cellkey.MAX_NOISE
        table = tables[SECTIONS[name]]
        for g in lt.groups:
            expected = actuarial_of(lt.at_risk[g], lt.events[g], lt.censored[g])
            rows = lt.rows()
            assert rows[rows.group == g].survival.tolist() == pytest.approx(expected, abs=1e-15), (name, g)
            for col in table.columns:
                if not col.startswith(("survival_", "month_")) or pd.isna(table.loc[g, col]):
                    continue
                day = int(col.split("_")[1])
                day = month_day(day) if col.startswith("month_") else day
                assert table.loc[g, col] == pytest.approx(expected[lt.grids[g].index(day)], abs=1e-15)
                checked += 1
            if "median_days" in table.columns and pd.notna(table.loc[g, "median_days"]):
                assert table.loc[g, "median_days"] == pytest.approx(median_of(list(lt.grids[g]), expected))
                checked += 1
    by_program = tables["Outcomes by program"]
    for col, section, source in (("retained_90", "Retention", "survival_90"),
                                 ("median_sober_days", "Sobriety", "median_days")):
        shown = by_program[col].dropna()
        assert (shown == tables[section].loc[shown.index, source]).all()
    assert checked >= 10


def test_a_survival_of_the_published_counts_no_longer_pins_the_true_counts():
    """40 people, 14 leave before day 30, no one censored before: the survival of the true counts
    (65.0%) beside the published n pins (40, 14) for every store's secret, undoing the noise; the
    survival of the published counts gives the attacker the perturbed pair, which is the true one
    only when both noises happen to be 0."""
    days = np.array([5] * 14 + [400] * 26)
    event = np.array([True] * 14 + [False] * 26)
    assert candidates(1 - 14 / 40, 40) == {(40, 14)}  # what the true-count survival gave away
    pinned = exact_pinned = 0
    for seed in range(20):
        keys = np.random.default_rng(seed).integers(0, 2**64, size=40, dtype=np.uint64)
        lt = disclosure.life_table(days, event, np.full(40, ALL, dtype=object), (30, 90, 180), T, keys=keys)
        assert lt.grid(ALL)[:2] == [0, 30] and lt.censored[ALL][0] == 0
        n_pub, s30 = lt.at_risk[ALL][0], lt.survival(ALL)[1]
        assert abs(n_pub - 40) <= 2 and abs(lt.events[ALL][0] - 14) <= 2
        assert s30 == pytest.approx(1 - lt.events[ALL][0] / n_pub)
        found = candidates(s30, n_pub)
        assert (n_pub, lt.events[ALL][0]) in found
        pinned += (40, 14) in found
        exact_pinned += candidates(1 - 14 / 40, n_pub) == {(40, 14)}
    assert exact_pinned == 20 and pinned <= 3
