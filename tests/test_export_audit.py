"""The auditor (tests/disclosure_auditor.py) over the chart downloads of the staff pages
(analytics.publish.page_exports), the survival export (analytics.publish.exports.km_export) and
the cumulative-incidence export (exports.incidence_export: kinds of exit adding up to the events):
every count an export's table publishes, with the relations the table declares (total rows, row
sums, rates shown beside their counts) and, for the survival chart, every point and number at
risk of its curve (the life table behind it); no hidden count may be narrowed below the "<11"
marker's range. On the hand-made store, the sample and random small programs; and the audit
fails when one suppression rule is switched off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from director_data import CUR, hand, sample  # noqa: F401
from hypothesis import HealthCheck, given, settings, strategies as st

from analytics.analyses.survival import NoData, analyse
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import default_period
from analytics.publish import disclosure, exports, privacy
from analytics.publish.disclosure import ALL
from analytics.publish.exports import ChartExport
from analytics.publish.privacy import Protected
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_auditor import (Auditor, actuarial_of, add_life_table, add_table, candidates, factor_noise,
                                median_of)
from disclosure_data import small_store
from test_page_exports import build_all

T = privacy.DEFAULT_THRESHOLD

# The relations each page export's table declares: (total row, row sums, rates as (rate, numerator,
# denominator, denominator's row or None for the same row)).
RELATIONS: dict[str, tuple[str | None, list[tuple[list[str], str]], list[tuple[str, str, str, str | None]]]] = {
    "weekly_trends": (None, [], []),
    "weekday": ("All days", [], [(f"{k}_share", k, k, "All days") for k in ("meetings", "checkins", "mentoring")]),
    "adherence": (ALL, [], [("share", "participants", "participants", ALL)]),
    "caseloads": ("All mentors", [], [("sessions_per_mentee", "sessions", "active_mentees", None)]),
    "cohort_heatmap": (None, [], []),
    "cohort_used": (None, [(["reported_use", "no_use"], "participants")], []),
    "cohort_craving": (None, [], []),
    "cohort_mood": (None, [], []),
    "hazard_ratios": (None, [], []),
    "naive": (None, [], []),
}
BLOCKS = {"cox": "(all levels)", "dose_response": "All tiers"}  # stacked tables: a total row per block


def add_relations(aud: Auditor, p: Protected, prefix: str, total: str | None,
                  sums: list[tuple[list[str], str]], rates: list[tuple[str, str, str, str | None]]) -> None:
    """A protected table's cells (add_table), its row sums and its rates (rate x denominator = numerator)."""
    add_table(aud, p, prefix, total_row=total)
    rows = p.values.index
    for parts, whole in sums:
        for row in rows:
            aud.equal({**{f"{prefix}:{c}:{row}": 1 for c in parts}, f"{prefix}:{whole}:{row}": -1})
    for rate, num, den, den_row in rates:
        if {num, den} & set(p.perturbed):  # a rate of published (perturbed) counts: no relation of true ones
            continue
        for row in rows:
            value = p.values.loc[row, rate]
            if pd.notna(value):  # (a share of the total in the total row itself: 1 x total = total)
                terms = {f"{prefix}:{num}:{row}": 1.0}
                key = f"{prefix}:{den}:{den_row or row}"
                terms[key] = terms.get(key, 0.0) - float(value)
                aud.equal(terms)


def add_blocks(aud: Auditor, p: Protected, prefix: str, total: str) -> None:
    """A stacked table (page_exports._stack): each block's counts add up to its own total row."""
    add_table(aud, p, prefix, total_row=None)
    for block in p.values.index.get_level_values(0).unique():
        rows = [r for r in p.values.index if r[0] == block]
        for col in p.counts:
            parts = [r for r in rows if r[1] != total]
            aud.equal({**{f"{prefix}:{col}:{r}": 1 for r in parts}, f"{prefix}:{col}:{(block, total)}": -1})


def audit_page_export(name: str, export: ChartExport) -> list[str]:
    aud = Auditor(export.table.threshold)
    p = export.table
    if name in BLOCKS:
        add_blocks(aud, p, name, BLOCKS[name])
    elif name.startswith("attendance"):
        cats = [c for c in p.counts if c != "All meetings"]
        add_relations(aud, p, name, "Total", [(cats, "All meetings")] if cats else [], [])
    elif name == "landmark_km":
        return audit_km(export)
    else:
        add_relations(aud, p, name, *RELATIONS[name])
    return aud.failures()


def audit_incidence(export: ChartExport) -> list[str]:
    """The cumulative-incidence export: the life table behind it (at risk, events and censored taken
    as published, the kinds of exit adding up to the events, the groups to All), the table's n, and
    each incidence the figure draws: with the published at risk and censored, the rise of a kind's
    incidence over an interval gives its exits there, exits = rise x (at risk - censored / 2) /
    survival at the start. The figure must draw the life table's published days only. With perturbed
    counts (``lt.noise``) the rise gives the perturbed exits (true ones +/- 2), and the kind not drawn
    (other exits), a perturbed count of 0 or at least the threshold like every count of the table, is
    taken as published: events minus the drawn kinds would give it only within +/- 6 anyway."""
    lt = export.life_table
    aud = Auditor(lt.threshold)
    names = sorted([g for g in lt.groups if g != ALL] + list(lt.hidden))
    add_life_table(aud, lt, names, "lt", kinds_published=bool(lt.noise))
    groups = [*names, ALL] if ALL in lt.groups and names else (names or [ALL])
    for g in export.table.values.index:
        aud.same(f"table:n:{g}", f"lt:at_risk:{g if g in groups else ALL}:0")
    add_table(aud, export.table, "table", total_row=ALL if ALL in export.table.values.index and
              len(export.table.values) > 1 else None)
    drawn = 0
    for trace in export.figure.data:
        g, kind = trace.meta["group"], trace.meta["exit_type"]
        days, cif = list(lt.grids[g]), np.asarray(trace.y, float)
        np.testing.assert_array_equal(np.asarray(trace.x, float), np.asarray(days, float))
        surv, grid = lt.survival(g), [lt.points.index(d) for d in days]
        for j, (k0, k1) in enumerate(zip(grid, grid[1:])):
            effective = lt.at_risk[g][j] - lt.censored[g][j] / 2
            if surv[j] <= 0:  # no one left (perturbed counts can say so): the rise tells nothing
                continue
            exits = round((cif[j + 1] - cif[j]) * effective / surv[j])  # as published: perturbed with noise
            name = f"lt:{kind}:{g}:{k0}-{k1}:drawn"
            aud.equal({**{f"lt:{kind}:{g}:{k}": 1 for k in range(k0, k1)}, name: -1})
            aud.publish(name, exits, lt.noise)
            drawn += 1
    assert drawn or all(len(lt.grids[g]) == 1 for g in lt.groups)
    return aud.failures()


def audit_km(export: ChartExport) -> list[str]:
    """The survival export: the life table behind the curve and its numbers at risk, the summary
    table's n and numbers at risk (the same cells, groups adding up to All), and the figure, which
    must draw the life table's published points only."""
    lt = export.life_table
    aud = Auditor(lt.threshold)
    names = sorted([g for g in lt.groups if g != ALL] + list(lt.hidden))
    add_life_table(aud, lt, names, "lt")
    p = export.table
    add_table(aud, p, "table", total_row=ALL if ALL in p.values.index and len(p.values) > 1 else None)
    groups = [*names, ALL] if ALL in lt.groups and names else (names or [ALL])
    for g in p.values.index:
        lt_g = g if g in groups else ALL
        aud.same(f"table:n:{g}", f"lt:at_risk:{lt_g}:0")
        for col in p.counts:
            day = int(str(col).removeprefix("at_risk_")) if str(col).startswith("at_risk_") else None
            if day is not None and day in lt.points:
                aud.same(f"table:{col}:{g}", f"lt:at_risk:{lt_g}:{lt.points.index(day)}")
    rows = lt.rows()
    for trace in export.figure.data:
        meta = trace.meta if isinstance(trace.meta, dict) else {}
        if meta.get("role") == "curve":  # the curve: the life table's published days, survival, at risk
            sub = rows[rows.group == meta["group"]]
            np.testing.assert_array_equal(np.asarray(trace.x, float), sub.time.to_numpy(float))
            np.testing.assert_allclose(np.asarray(trace.y, float), sub.survival.to_numpy(float))
            np.testing.assert_array_equal(np.asarray(trace.customdata, float), sub.at_risk.to_numpy(float))
    return aud.failures()


@pytest.fixture(scope="module")
def built(hand, sample):  # noqa: F811
    return {"hand": build_all(hand, CUR), "sample": build_all(sample, default_period(sample))}


@pytest.mark.parametrize("store", ["hand", "sample"])
def test_every_page_export_passes_the_audit(built, store):
    failures = {name: audit_page_export(name, e) for name, e in built[store].items() if isinstance(e, ChartExport)}
    assert {k: v for k, v in failures.items() if v} == {}
    assert len(failures) >= 13


@pytest.mark.parametrize("by", [None, "program", "site", "cohort_quarter", "primary_substance"])
@pytest.mark.parametrize("outcome", ["retention", "sobriety"])
def test_the_km_export_passes_the_audit(sample, by, outcome):  # noqa: F811
    export = exports.km_export(analyse(sample, outcome, by=by))
    assert audit_km(export) == []
    for g in export.life_table.groups:  # every count behind a curve point is 0 or at least the threshold
        lt = export.life_table
        assert all(v == 0 or v >= T for v in [*lt.at_risk[g], *lt.events[g], *lt.censored[g]])


def test_the_km_curve_no_longer_steps_by_one_person(sample):  # noqa: F811
    """Westfield: 5 drop-outs before day 90, shown "<11" in the numbers at risk, used to be read
    off five one-person steps of the curve (at risk 78, 77, ...). Now the curve's points are the
    life table's days, each step holding 0 or at least 11 events."""
    export = exports.km_export(analyse(sample, "retention", by="site"))
    west = [t for t in export.figure.data if isinstance(t.meta, dict) and t.meta.get("role") == "curve"
            and t.meta["group"] == "Westfield"]
    at_risk = np.asarray(west[0].customdata, float) if west else np.array([])
    steps = -np.diff(at_risk)
    assert not ((steps > 0) & (steps < T)).any(), at_risk


def test_the_km_export_audit_fails_when_the_group_complement_is_off(sample, monkeypatch):  # noqa: F811
    """Switch the life table's complementary rule off (hide only groups under the threshold): the
    auditor reads a hidden group's size from All minus the groups shown."""
    a = analyse(sample, "retention", by="primary_substance", filters=Filters(programs=("Recovery Mentoring",)))
    assert audit_km(exports.km_export(a)) == []
    monkeypatch.setattr(disclosure, "_shown_groups", lambda sizes, hide, t: sorted(g for g, n in sizes.items()
                                                                                 if n >= t))
    monkeypatch.setattr(disclosure, "_leaks", lambda *a: False)
    failures = audit_km(exports.km_export(a))
    assert any(":at_risk:" in f for f in failures), failures


def test_a_page_export_audit_fails_when_complementary_suppression_is_off(built, sample, monkeypatch):  # noqa: F811
    """Complementary suppression off (privacy._pick never picks): the sample's adherence, cox and
    attendance tables give their "<11" cells away through their totals."""
    monkeypatch.setattr(privacy, "_pick", lambda *a: None)
    rebuilt = build_all(sample, default_period(sample))
    failures = {name: audit_page_export(name, e) for name, e in rebuilt.items() if isinstance(e, ChartExport)}
    assert any(failures.values()), failures


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.sampled_from([(13, 27), (27, 13), (12, 30), (5, 35), (11, 11), (40,), (9, 14, 20)]),
       seed=st.integers(0, 10_000), outcome=st.sampled_from(["retention", "sobriety"]))
def test_small_programs_pass_the_export_audit(tmp_path_factory, sizes, seed, outcome):
    names = ["Recovery Mentoring", "Community Peer Support", "Online Recovery Community"][:len(sizes)]
    store = small_store(tmp_path_factory.mktemp("small"), dict(zip(names, sizes)), seed)
    try:
        for by, secret in (("program", None), (None, None), ("program", cell_key_secret(store))):
            try:
                export = exports.km_export(analyse(store, outcome, by=by), secret=secret)
            except (NoData, exports.TooFew):
                continue
            assert audit_km(export) == []
            if secret is not None:
                survival_of_published_counts(export)
        if outcome == "retention":
            for secret in (None, cell_key_secret(store)):
                try:
                    export = exports.incidence_export(analyse(store, outcome, by="program"), secret=secret)
                except (NoData, exports.TooFew):
                    continue
                assert audit_incidence(export) == []
        for name, export in build_all(store, default_period(store)).items():
            if isinstance(export, ChartExport):
                assert audit_page_export(name, export) == [], name
    finally:
        store.close()


@pytest.mark.parametrize("by", [None, "program", "site", "cohort_quarter"])
def test_the_incidence_export_passes_the_audit(hand, sample, by):  # noqa: F811
    """Every count of the life table split by kind of exit is 0 or at least the threshold, and the
    auditor, given the incidences the figure draws, narrows no hidden count."""
    for store in (hand, sample):
        try:
            export = exports.incidence_export(analyse(store, "retention", by=by))
        except (NoData, exports.TooFew):
            continue
        lt = export.life_table
        assert lt.kinds == ("dropped_out", "completed", "other_exit") and audit_incidence(export) == []
        for g in lt.groups:
            counts = [*lt.at_risk[g], *lt.events[g], *lt.censored[g], *(c for k in lt.kinds
                                                                        for c in lt.kind_events[k][g])]
            assert all(v == 0 or v >= T for v in counts), (g, counts)


def test_the_incidence_audit_fails_when_the_split_by_kind_rule_is_off(sample, monkeypatch):  # noqa: F811
    """Merge intervals on all exits together only (the kinds not checked): an interval's drop-outs
    and other exits are each published through the incidence's rise, and some are 1 to 10."""
    a = analyse(sample, "retention")
    assert audit_incidence(exports.incidence_export(a)) == []
    monkeypatch.setattr(disclosure, "_kind_counts", lambda m, events: ())
    failures = audit_incidence(exports.incidence_export(a))
    assert any(":other_exit:" in f or ":completed:" in f or ":dropped_out:" in f for f in failures), failures


def test_the_published_incidence_is_the_actuarial_aalen_johansen(sample):  # noqa: F811
    """Computed here from the durations on the published days: per interval [a, b) at risk r = time >= a,
    exits of each kind d_k and censored c in [a, b); S *= 1 - d / (r - c/2), CIF_k += S(a) d_k / (r - c/2)."""
    a = analyse(sample, "retention")
    export = exports.incidence_export(a)
    days = list(export.life_table.grids[ALL])
    frame = a.durations.frame
    time, kind = frame.days.to_numpy(), frame.event_type.astype(str).to_numpy()
    exit_ = np.isin(kind, ["dropped_out", "completed", "other_exit"])
    s, cif, checked = 1.0, {"dropped_out": 0.0, "completed": 0.0}, 0
    for lo, hi in zip(days, days[1:]):
        inside = (time >= lo) & (time < hi)
        effective = (time >= lo).sum() - (inside & ~exit_).sum() / 2
        for k in cif:
            cif[k] += s * (inside & (kind == k)).sum() / effective
        s *= 1 - (inside & exit_).sum() / effective
        if hi in (30, 90, 180, 365):
            for k, value in cif.items():
                assert export.table.values.loc[ALL, f"{k}_{hi}"] == pytest.approx(value, abs=1e-12)
                checked += 1
    assert checked >= 2 and export.table.values.loc[ALL, "dropped_out_90"] == pytest.approx(0.2022, abs=1e-4)


def _weeks() -> tuple[pd.DataFrame, dict]:
    """Weeks x meeting types with row and column totals, modelled on what Hypothesis found in an
    attendance download (seed 457): two "<11" of a week add up to 11 (its total minus its shown
    cells), each 1..10 by that row alone, but the "<11" cells of one column cap one of them."""
    table = pd.DataFrame({"AA": [14, 14, 17], "SMART": [5, 5, 5], "Other": [1, 0, 6], "Online": [32, 33, 41]},
                         index=["w1", "w2", "w3"])
    table["All"] = table.sum(axis=1)
    table.loc["Total"] = table.sum()
    return table, dict(counts=["AA", "SMART", "Other", "Online", "All"],
                       sums=[(["AA", "SMART", "Other", "Online"], "All")], total_row="Total")


def test_relations_taken_together_are_protected(monkeypatch):
    table, how = _weeks()
    aud = Auditor(T)
    p = privacy.protect(table, **how)
    add_relations(aud, p, "t", "Total", [(["AA", "SMART", "Other", "Online"], "All")], [])
    assert aud.failures() == []
    assert p.complementary.loc["w3", "AA"]  # the extra complement: week 3's smallest shown part
    monkeypatch.setattr(privacy, "_combined", lambda vals, primary, hidden, *rest: hidden)
    aud = Auditor(T)
    add_relations(aud, privacy.protect(table, **how), "t", "Total", [(["AA", "SMART", "Other", "Online"], "All")], [])
    assert aud.failures() == ["t:AA:w1: between 10 and 18", "t:AA:w2: between 10 and 18",
                              "t:SMART:w1: between 1 and 9", "t:SMART:w2: between 1 and 9",
                              "t:SMART:w3: between 2 and 10"]


@pytest.mark.parametrize("by", ["program", "site"])
def test_the_km_export_perturbs_every_count_from_its_members(sample, by):  # noqa: F811
    """With the store's secret (as the Survival page passes it) each group's n and number at risk is
    cellkey.perturb of the participants behind it, within 2 of the true count; the audit (which reads
    a perturbed c as c-2..c+2) passes, and the files say the counts are perturbed."""
    from analytics.publish import cellkey

    secret = cell_key_secret(sample)
    a = analyse(sample, "retention", by=by)
    export = exports.km_export(a, secret=secret)
    assert export.life_table.noise == cellkey.MAX_NOISE and audit_km(export) == []
    assert privacy.method_statement(T, perturbed=True) in "\n".join(export.lines())
    assert export.meta.n == f"n = {export.table.values.loc[ALL, 'n']:,.0f} participants"  # not the true count
    frame = a.durations.frame.assign(group=a.durations.frame[by].astype(str))
    shown = export.table.values
    checked = 0
    for g in export.life_table.groups:
        members = frame if g == ALL else frame[frame.group == g]
        assert shown.loc[g, "n"] == cellkey.perturb(secret, members.participant_id.astype(str))
        assert abs(shown.loc[g, "n"] - len(members)) <= cellkey.MAX_NOISE
        for day in (30, 90, 180, 365):
            if pd.notna(shown.loc[g, f"at_risk_{day}"]):
                later = members[members.days >= day].participant_id.astype(str)
                assert shown.loc[g, f"at_risk_{day}"] == cellkey.perturb(secret, later)
                assert abs(shown.loc[g, f"at_risk_{day}"] - len(later)) <= cellkey.MAX_NOISE
                checked += 1
    assert checked >= 4
    survival_of_published_counts(export)


def survival_of_published_counts(export: ChartExport) -> int:
    """Every survival the km export publishes (the table, the curve's points, the median) is the
    actuarial value of the published at risk, events and censored (written out here), and each of
    those counts is the perturbation of the participants behind it. Returns the values checked."""
    lt, shown, checked = export.life_table, export.table.values, 0
    curves = {t.meta["group"]: t for t in export.figure.data
              if isinstance(t.meta, dict) and t.meta.get("role") == "curve"}
    for g in lt.groups:
        expected = actuarial_of(lt.at_risk[g], lt.events[g], lt.censored[g])
        np.testing.assert_allclose(np.asarray(curves[g].y, float), expected, rtol=0, atol=1e-15)
        for day in (30, 90, 180, 365):
            if pd.notna(shown.loc[g, f"survival_{day}"]):
                assert shown.loc[g, f"survival_{day}"] == pytest.approx(expected[lt.grids[g].index(day)], abs=1e-15)
                checked += 1
        if pd.notna(shown.loc[g, "median_days"]):
            assert shown.loc[g, "median_days"] == pytest.approx(median_of(list(lt.grids[g]), expected))
    return checked


def members_of(a, lt) -> dict[str, pd.DataFrame]:
    """Each group of the life table: its participants in the analysis (All: everyone)."""
    frame = a.durations.frame.assign(group=a.durations.frame[a.by].astype(str) if a.by else ALL)
    return {g: frame if g == ALL else frame[frame.group == g] for g in lt.groups}


def test_every_count_behind_a_published_survival_is_perturbed_from_its_members(sample):  # noqa: F811
    """The life table's events and censored counts too (the risk table under the curve): each is
    cellkey.perturb of the participants in its interval, so the survival of them is noise-protected."""
    from analytics.publish import cellkey

    secret = cell_key_secret(sample)
    a = analyse(sample, "sobriety", by="program")
    export = exports.km_export(a, secret=secret)
    lt, checked, moved = export.life_table, 0, 0
    for g, members in members_of(a, lt).items():
        grid = lt.grids[g]
        for j, (lo, hi) in enumerate(zip(grid, grid[1:])):
            inside = members[(members.days >= lo) & (members.days < hi)]
            for published, who in ((lt.events[g][j], inside[inside.event]), (lt.censored[g][j], inside[~inside.event])):
                assert published == cellkey.perturb(secret, who.participant_id.astype(str))
                assert abs(published - len(who)) <= cellkey.MAX_NOISE
                checked += 1
                moved += published != len(who)
    assert checked >= 10 and moved >= 3
    assert survival_of_published_counts(export) >= 4


def test_weekly_trends_download_perturbs_its_counts_of_people(sample):  # noqa: F811
    """As the Overview page builds it (trends read keyed): each week's active participants and new
    enrollments are cellkey.perturb of the people behind them (within 2 of the truth), before
    suppression; activity counts stay exact; the note gives no true total; the file says so."""
    from analytics.analyses import kpis
    from analytics.publish import page_exports
    from tests import cellkey_truth as truth

    period = default_period(sample)
    ov = kpis.overview(sample, Filters(), period)
    keyed = kpis.weekly_trends(sample, Filters(), period, keyed=True)
    export = page_exports.weekly_trends_export(keyed, ov)
    assert export.table.perturbed == ("active", "new_enrollments")
    assert privacy.method_statement(T, perturbed=True) in export.lines()
    assert str(ov.kpis["active"].current) not in export.meta.n
    exact = kpis.weekly_trends(sample, Filters(), period).set_index("week_start")
    shown = export.table.values
    moved = 0
    assert len(keyed) >= 5
    for _, week in keyed.iterrows():
        for col, members in (("active", truth.active(sample, week.first_day, week.last_day)),
                             ("new_enrollments", truth.new_enrollments(sample, week.first_day, week.last_day))):
            assert len(members) == exact.loc[week.week_start, col]
            published = truth.published(sample, members)
            assert abs(published - len(members)) <= 2
            value = shown.loc[week.week_start, col]
            assert value == published if published == 0 or published >= T else np.isnan(value)
            moved += published != len(members)
        assert shown.loc[week.week_start, "meetings"] == exact.loc[week.week_start, "meetings"]
    # the noise is there: each cell is left as it is with chance 1/5, so fewer than 2 of the
    # 10 cells moved has chance ~4e-6 (it was 1 week of 5 checked, 2 cells: failing 2 runs in 5)
    assert moved >= 2


def test_adherence_download_perturbs_its_bands_from_their_members(sample):  # noqa: F811
    """As the Engagement page builds it (keyed): each band's participants is cellkey.perturb of the
    people in it (found here with pandas), within 2 of the truth, before suppression; the total is
    everyone's; the shares are of the published counts; the audit passes; the file says so."""
    from analytics.analyses import activity
    from analytics.publish import page_exports
    from tests import cellkey_truth as truth

    period = default_period(sample)
    exact = activity.adherence_distribution(sample, Filters(), period).set_index("band")
    export = page_exports.adherence_export(activity.adherence_distribution(sample, Filters(), period, keyed=True),
                                           period, Filters(), period.end)
    assert export.table.perturbed == ("participants",)
    assert privacy.method_statement(T, perturbed=True) in export.lines()
    bands = truth.adherence_bands(sample, period.start, period.end, period.full_weeks())
    shown = export.table.values
    everyone = set().union(*bands.values())
    moved = 0
    for band, members in [*bands.items(), (ALL, everyone)]:
        if band != ALL:
            assert len(members) == exact.loc[band, "participants"]
        published = truth.published(sample, members)
        assert abs(published - len(members)) <= 2
        value = shown.loc[band, "participants"]
        hidden = export.table.complementary.loc[band, "participants"] or 0 < published < T
        assert np.isnan(value) if hidden else value == published
        moved += published != len(members)
    assert moved >= 1  # the noise is there
    assert set(bands) == {b for b, n in exact.participants.items() if n}
    total = shown.loc[ALL, "participants"]
    for band in bands:
        if pd.notna(shown.loc[band, "share"]):
            assert shown.loc[band, "share"] == pytest.approx(shown.loc[band, "participants"] / total)
    assert audit_page_export("adherence", export) == []


def test_cohort_heatmap_download_perturbs_n_and_at_risk_from_their_members(sample):  # noqa: F811
    """As the Cohorts page builds it (keyed): each cohort's n and number still followed at each month
    is cellkey.perturb of the participants behind it (cohort = quarter of enrollment, found here with
    pandas; followed = retention duration >= the month's day), within 2 of the truth, before
    suppression; the audit passes; the file says the counts are perturbed."""
    from analytics.analyses import cohorts
    from analytics.publish import cellkey, page_exports
    from tests import cellkey_truth as truth

    secret = cell_key_secret(sample)
    r = cohorts.cohort_retention(sample, Filters(), "quarter", keyed=True)
    export = page_exports.cohort_heatmap_export(r)
    assert privacy.method_statement(T, perturbed=True) in export.lines()
    assert audit_page_export("cohort_heatmap", export) == []
    frame = analyse(sample, "retention").durations.frame[["participant_id", "days"]]
    enrolled = truth.participants(sample).set_index("participant_id").enrolled_on
    frame = frame.assign(cohort=[f"{d.year}-Q{(d.month - 1) // 3 + 1}" for d in enrolled.loc[frame.participant_id]])
    shown = export.table.values
    checked = moved = 0
    for cohort, members in frame.groupby("cohort"):
        ids = members.participant_id.astype(str)
        assert len(ids) == r.n[cohort]
        assert shown.loc[cohort, "n"] == cellkey.perturb(secret, ids)
        assert abs(shown.loc[cohort, "n"] - len(ids)) <= cellkey.MAX_NOISE
        for m in r.months:
            if pd.notna(shown.loc[cohort, f"at_risk_{m}"]):
                later = members[members.days >= cohorts.month_day(m)].participant_id.astype(str)
                assert len(later) == r.at_risk.loc[cohort, m]
                published = cellkey.perturb(secret, later)
                assert shown.loc[cohort, f"at_risk_{m}"] == published
                assert abs(published - len(later)) <= cellkey.MAX_NOISE
                checked += 1
                moved += published != len(later)
    assert checked >= 40 and moved >= 10


def test_caseload_download_perturbs_each_mentors_mentees(sample):  # noqa: F811
    """As the Engagement page builds it (keyed): each mentor's active mentees is cellkey.perturb of
    the mentees found here with pandas (within 2 of the truth) before suppression; the total of
    mentor-mentee pairs gets the noise of the sum of the mentors' keys; sessions stay exact; rates are
    of the published counts; the audit passes; the file says so."""
    from analytics.analyses import activity
    from analytics.publish import cellkey, page_exports
    from tests import cellkey_truth as truth

    secret = cell_key_secret(sample)
    period = default_period(sample)
    exact = activity.mentor_caseloads(sample, Filters(), period).set_index("mentor_id")
    export = page_exports.caseload_export(activity.mentor_caseloads(sample, Filters(), period, keyed=True),
                                          period, Filters(), period.end)
    assert export.table.perturbed == ("active_mentees",)
    assert privacy.method_statement(T, perturbed=True) in export.lines()
    assert audit_page_export("caseloads", export) == []
    shown = export.table.values
    mentees = truth.caseloads(sample, period.start, period.end)
    assert set(mentees) == set(exact.index)
    moved = 0
    for mentor, ids in mentees.items():
        assert len(ids) == exact.loc[mentor, "active_mentees"]
        published = cellkey.perturb(secret, sorted(ids))
        assert abs(published - len(ids)) <= cellkey.MAX_NOISE
        value = shown.loc[mentor, "active_mentees"]
        hidden = export.table.complementary.loc[mentor, "active_mentees"] or 0 < published < T
        assert np.isnan(value) if hidden else value == published
        if pd.notna(value):
            assert shown.loc[mentor, "sessions"] == exact.loc[mentor, "sessions"]
            assert shown.loc[mentor, "sessions_per_mentee"] == pytest.approx(exact.loc[mentor, "sessions"] / value)
        moved += published != len(ids)
    pairs = sum(len(ids) for ids in mentees.values())
    key = sum(cellkey.cell_key(secret, ids) for ids in mentees.values()) % cellkey.MODULUS
    assert shown.loc["All mentors", "active_mentees"] == cellkey.noisy(pairs, key)
    assert abs(shown.loc["All mentors", "active_mentees"] - pairs) <= cellkey.MAX_NOISE
    assert moved >= 1


def test_cox_download_perturbs_n_per_level_from_its_participants(sample):  # noqa: F811
    """With the store's secret (as the Survival page passes it): each level's n and each covariate's
    total is cellkey.perturb of the participants behind it (within 2 of the truth) before
    suppression; the note's n is the published one; the audit passes; the file says so."""
    from analytics.publish import cellkey, page_exports
    from analytics.publish.page_exports import ALL_LEVELS

    secret = cell_key_secret(sample)
    a = analyse(sample, "retention", by="primary_substance", filters=Filters(programs=("Recovery Mentoring",)))
    export = page_exports.cox_export(a, secret=secret)
    assert export.table.perturbed == ("n",)
    assert privacy.method_statement(T, perturbed=True) in export.lines()
    assert audit_page_export("cox", export) == []
    frame = a.durations.frame
    everyone = frame.participant_id.astype(str)
    assert export.meta.n == f"n = {cellkey.perturb(secret, everyone):,} participants"
    shown = export.table.values
    checked = moved = 0
    for (term, level), row in shown.iterrows():
        ids = everyone if level == ALL_LEVELS else everyone[frame[term].astype(object).where(
            frame[term].notna(), "(missing)").astype(str) == level]
        published = cellkey.perturb(secret, ids)
        assert abs(published - len(ids)) <= cellkey.MAX_NOISE
        hidden = export.table.complementary.loc[(term, level), "n"] or 0 < published < T
        assert np.isnan(row.n) if hidden else row.n == published
        checked += 1
        moved += published != len(ids)
    assert checked >= 4 and moved >= 1
    note = " ".join(a.text for a in export.figure.layout.annotations)
    events = cellkey.perturb(secret, everyone[frame.event.astype(bool)])
    assert f"n={cellkey.perturb(secret, everyone):,}, events={events:,};" in note  # not the true n and events


@pytest.mark.parametrize("by", [None, "program"])
def test_the_incidence_download_perturbs_every_count_from_its_members(sample, by):  # noqa: F811
    """With the store's secret (as the Survival page passes it) every count of the life table split by
    kind of exit (n, at risk, censored, each kind's exits) is cellkey.perturb of the participants behind
    it, within 2 of the truth; each published incidence is the actuarial Aalen-Johansen of those
    published counts; the audit passes with the noise; the file says the counts are perturbed."""
    from analytics.publish import cellkey

    secret = cell_key_secret(sample)
    a = analyse(sample, "retention", by=by)
    export = exports.incidence_export(a, secret=secret)
    lt = export.life_table
    assert lt.noise == cellkey.MAX_NOISE and audit_incidence(export) == []
    assert privacy.method_statement(T, perturbed=True) in "\n".join(export.lines())
    everyone = ALL if ALL in lt.groups else lt.groups[0]
    assert export.meta.n == f"n = {lt.n[everyone]:,} participants"
    checked = moved = 0
    for g, members in members_of(a, lt).items():
        kind = members.event_type.astype(str)
        cells = [(export.table.values.loc[g, "n"], members)]
        grid = lt.grids[g]
        for j, (lo, hi) in enumerate(zip(grid, grid[1:])):
            inside = (members.days >= lo) & (members.days < hi)
            cells += [(lt.at_risk[g][j + 1], members[members.days >= hi]),
                      (lt.censored[g][j], members[inside & ~kind.isin(exports.EXIT_KINDS)])]
            cells += [(lt.kind_events[k][g][j], members[inside & (kind == k)]) for k in lt.kinds]
        for published, who in cells:
            assert published == cellkey.perturb(secret, who.participant_id.astype(str))
            assert abs(published - len(who)) <= cellkey.MAX_NOISE
            checked += 1
            moved += published != len(who)
        surv, cif = actuarial_of(lt.at_risk[g], lt.events[g], lt.censored[g]), {k: [0.0] for k in lt.kinds}
        for j in range(len(grid) - 1):
            effective = lt.at_risk[g][j] - lt.censored[g][j] / 2
            for k in lt.kinds:
                cif[k].append(cif[k][-1] + surv[j] * min(1.0, lt.kind_events[k][g][j] / effective))
        for k in exports.INCIDENCE_KINDS:
            assert lt.incidence(g)[k] == pytest.approx(cif[k], abs=1e-15)
            for day in (30, 90, 180, 365):
                value = export.table.values.loc[g, f"{k}_{day}"]
                if pd.notna(value):
                    assert value == pytest.approx(cif[k][grid.index(day)], abs=1e-15)
                    checked += 1
    assert checked >= 10 and moved >= 3


def _cohort_members(sample) -> pd.DataFrame:  # noqa: F811
    """Retention durations with each participant's quarter of enrollment, found here with pandas."""
    from tests import cellkey_truth as truth

    frame = analyse(sample, "retention").durations.frame[["participant_id", "days", "event"]]
    enrolled = truth.participants(sample).set_index("participant_id").enrolled_on
    return frame.assign(cohort=[f"{d.year}-Q{(d.month - 1) // 3 + 1}" for d in enrolled.loc[frame.participant_id]])


def test_cohort_heatmap_shares_are_computed_from_perturbed_counts(sample):  # noqa: F811
    """Each published share is the actuarial survival over the months of the published number at
    risk at each month's start and the perturbed drop-outs and censorings within it (each
    cellkey.perturb of the participants behind it, found here with pandas), no longer the
    Kaplan-Meier value of the true counts; within the noise's reach of that value."""
    from analytics.analyses import cohorts
    from analytics.publish import cellkey, page_exports

    secret = cell_key_secret(sample)
    r = cohorts.cohort_retention(sample, Filters(), "quarter", keyed=True)
    shown = page_exports.cohort_heatmap_export(r).table.values
    checked = moved = 0
    ids = lambda rows: rows.participant_id.astype(str)  # noqa: E731
    for cohort, members in _cohort_members(sample).groupby("cohort"):
        if cohort not in shown.index:
            continue
        s, bound = 1.0, 0.0
        for m in r.months[1:]:
            if pd.isna(shown.loc[cohort, f"month_{m}"]):
                break
            lo, hi = cohorts.month_day(m - 1), cohorts.month_day(m)
            inside = members[(members.days >= lo) & (members.days < hi)]
            at_risk = shown.loc[cohort, f"at_risk_{m - 1}"]
            assert at_risk == cellkey.perturb(secret, ids(members[members.days >= lo]))
            e = cellkey.perturb(secret, ids(inside[inside.event]))
            c = cellkey.perturb(secret, ids(inside[~inside.event]))
            s *= min(1.0, max(0.0, 1 - e / (at_risk - c / 2)))
            assert shown.loc[cohort, f"month_{m}"] == pytest.approx(s, abs=1e-15), (cohort, m)
            bound += factor_noise(at_risk, e, c)
            assert abs(shown.loc[cohort, f"month_{m}"] - r.shares.loc[cohort, m]) <= bound + 0.03
            checked += 1
            moved += abs(shown.loc[cohort, f"month_{m}"] - r.shares.loc[cohort, m]) > 1e-9
    assert checked >= 30 and moved >= 20


def test_cohort_shares_no_longer_pin_the_true_counts(sample):  # noqa: F811
    """Cohorts with no one censored in month 1: the Kaplan-Meier share of the true counts there is
    1 - e/n, so beside the published n it gives the true (n, e) back (the attacker of
    test_disclosure_audit); the published share, of perturbed counts, gives the true pair in few."""
    from analytics.analyses import cohorts
    from analytics.publish import page_exports

    r = cohorts.cohort_retention(sample, Filters(), "quarter", keyed=True)
    shown = page_exports.cohort_heatmap_export(r).table.values
    true_pinned = pinned = cases = 0
    for cohort, members in _cohort_members(sample).groupby("cohort"):
        first = members[members.days < cohorts.month_day(1)]
        if (cohort not in shown.index or pd.isna(shown.loc[cohort, "month_1"]) or (~first.event).any()
                or not first.event.any() or (members.days == cohorts.month_day(1)).any()):
            continue
        n, e, n_pub = len(members), int(first.event.sum()), int(shown.loc[cohort, "n"])
        cases += 1
        true_pinned += candidates(r.shares.loc[cohort, 1], n_pub) == {(n, e)}
        pinned += (n, e) in candidates(shown.loc[cohort, "month_1"], n_pub)
    assert cases >= 3 and true_pinned == cases and pinned <= cases // 3
