"""The Engagement-and-retention downloads with the store's cell-key secret, as the page builds them
(analytics.publish.page_exports: hazard_ratio_export, naive_vs_correct_export, dose_response_export,
landmark_km_export): every count of people is cellkey.perturb of the participants behind it, worked
out here with pandas from the raw tables (retention durations from the survival analysis, meetings
before the landmark from attendance.csv's rows), within 2 of the truth, before suppression; person-weeks
stay exact; the notes and figures print only published counts; the same secret gives the same file;
and the export auditor (tests/test_export_audit.py) passes on the sample and on small random programs."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from director_data import sample  # noqa: F401
from disclosure_data import small_store
from hypothesis import HealthCheck, given, settings, strategies as st

from analytics.analyses.engagement import TIERS, EngagementAnalysis, analyse_engagement
from analytics.analyses.survival import NoData, analyse
from analytics.outcomes.filters import Filters
from analytics.publish import cellkey, page_exports, privacy
from analytics.publish.disclosure import ALL
from analytics.publish.exports import ChartExport, TooFew
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from test_export_audit import audit_km, audit_page_export

T = privacy.DEFAULT_THRESHOLD
EVERYONE = Filters()
NOISE = cellkey.MAX_NOISE
# A fixed secret for the sample's checks (each store makes its own at random): the same noise on every
# run, so the checks that the noise is there are not left to chance. The page passes the store's own
# (cell_key_secret), which the property test below uses.
SECRET = bytes.fromhex("5eed" * 16)


def analysis_cutoff(store: Store) -> dt.date:
    """The data cutoff the analyses ran to (as the page passes it to the files)."""
    return analyse(store, "retention").durations.cutoff


def build_keyed(store: Store, analysis: EngagementAnalysis, secret: bytes, day: int = 60) -> dict[str, ChartExport]:
    """The four downloads as the page builds them (with a cell-key secret), by the auditor's names."""
    cutoff = analysis_cutoff(store)
    calls = {
        "hazard_ratios": lambda: page_exports.hazard_ratio_export(analysis, EVERYONE, cutoff, secret=secret),
        "naive": lambda: page_exports.naive_vs_correct_export(analysis, EVERYONE, cutoff, secret=secret),
        "dose_response": lambda: page_exports.dose_response_export(analysis, EVERYONE, cutoff, secret=secret),
        "landmark_km": lambda: page_exports.landmark_km_export(analysis, day, EVERYONE, cutoff, secret=secret),
    }
    out = {}
    for name, call in calls.items():
        try:
            out[name] = call()
        except TooFew:
            pass
    return out


def durations(store: Store) -> pd.DataFrame:
    """Each participant's retention days and event (the survival analysis, not the engagement code)."""
    frame = analyse(store, "retention").durations.frame
    return pd.DataFrame({"participant_id": frame.participant_id.astype(str).to_numpy(),
                         "days": frame.days.to_numpy(int), "event": frame.event.to_numpy(bool)})


def landmark_members(store: Store, day: int) -> pd.DataFrame:
    """Those still in (and without the event) on ``day``: days after it, event, and their meetings tier
    (meetings attended in their first ``day`` days after enrolling, counted from attendance rows)."""
    d = durations(store)
    d = d[(d.days >= day) & ~(d.event & (d.days == day))].copy()
    people = store.df("SELECT participant_id, enrolled_on FROM participants")
    meetings = store.df("SELECT participant_id, attended_on FROM attendance").merge(people, on="participant_id")
    since = (pd.to_datetime(meetings.attended_on) - pd.to_datetime(meetings.enrolled_on)).dt.days
    before = meetings[since < day].groupby("participant_id").size()
    count = before.reindex(d.participant_id, fill_value=0).to_numpy()
    d["tier"] = [next(label for low, high, label in TIERS if count_ >= low and (high is None or count_ <= high))
                 for count_ in count]
    d["days_after"] = d.days - day
    return d


@pytest.fixture(scope="module")
def keyed(sample):  # noqa: F811
    analysis = analyse_engagement(sample, "retention")
    return analysis, SECRET, build_keyed(sample, analysis, SECRET)


def _published(secret: bytes, ids: pd.Series) -> int:
    return cellkey.perturb(secret, ids.astype(str))


def test_the_analysis_carries_its_members_but_not_in_its_json(sample, keyed):  # noqa: F811
    analysis, _, _ = keyed
    d = durations(sample)
    assert sorted(analysis.participant_ids) == sorted(d.participant_id) and analysis.n == len(d) == 800
    assert sorted(analysis.event_ids) == sorted(d.participant_id[d.event]) and analysis.events == 322
    for lm in analysis.landmarks:
        people = analysis.landmark_people(lm)
        members = landmark_members(sample, lm.day)
        assert len(people) == lm.n and people.event.sum() == lm.events and lm.tier_codes.dtype == np.int8
        assert {t: int((people.tier == t).sum()) for t in lm.curves} == {t: km.n for t, km in lm.curves.items()}
        mine = people.set_index("participant_id").sort_index()
        theirs = members.set_index("participant_id").sort_index()
        assert mine.index.equals(theirs.index) and (mine.days_after == theirs.days_after).all()
        assert (mine.event == theirs.event).all() and (mine.tier.astype(str) == theirs.tier).all()
    out = analysis.to_json()  # the JSON shapes are unchanged: no ids, days or tiers of people in them
    assert list(out) == ["outcome", "n", "events", "person_weeks", "time_varying", "exposure_sd", "landmark", "gee",
                         "naive", "adjusted_for", "adjustment_terms", "left_out", "warnings", "explanation",
                         "naive_label"]
    assert list(out["landmark"][0]) == ["day", "n", "events", "terms", "tiers", "odds_in_at_6_months", "odds_n"]
    assert str(analysis.participant_ids[0]) not in str(out)


@pytest.mark.parametrize("name", ["hazard_ratios", "naive"])
def test_model_n_and_events_are_perturbed_from_their_participants(sample, keyed, name):  # noqa: F811
    analysis, secret, built = keyed
    export = built[name]
    d = durations(sample)
    n, events = _published(secret, d.participant_id), _published(secret, d.participant_id[d.event])
    assert abs(n - 800) <= NOISE and abs(events - 322) <= NOISE and (n, events) != (800, 322)
    assert export.table.perturbed == ("n", "events")
    shown = export.table.values
    assert (shown.n == n).all() and (shown.events == events).all()
    corrected = shown.person_weeks.dropna()  # weeks, not people: exact
    assert len(corrected) == 4 and (corrected == 18256).all() and analysis.person_weeks == 18256
    lines = export.lines()
    assert privacy.method_statement(T, perturbed=True) in lines
    assert page_exports.PERSON_WEEKS_NOTE.format(t=T) in lines
    assert export.meta.n == f"n = {n:,} participants, {events:,} events, 18,256 person-weeks"
    note = " ".join(a.text for a in export.figure.layout.annotations if a.name == "note")
    assert f"n={n:,} participants, events={events:,}" in note and "n=800 participants" not in note
    assert audit_page_export(name, export) == []


def test_dose_response_perturbs_each_tier_and_total_from_its_members(sample, keyed):  # noqa: F811
    analysis, secret, built = keyed
    export = built["dose_response"]
    p = export.table
    assert p.perturbed == ("n", "events")
    checked = moved = 0
    for lm in analysis.landmarks:
        members = landmark_members(sample, lm.day)
        groups = {f"{t} meetings": members[members.tier == t] for t in lm.curves} | {"All tiers": members}
        for row, group in groups.items():
            for col, ids in (("n", group.participant_id), ("events", group.participant_id[group.event])):
                published = _published(secret, ids)
                assert abs(published - len(ids)) <= NOISE
                true = (lm.n, lm.events) if row == "All tiers" else (lm.curves[row.split()[0]].n,
                                                                      lm.curves[row.split()[0]].events)
                assert len(ids) == true[col == "events"]  # the members found here are the model's
                value = p.values.loc[(f"day {lm.day}", row), col]
                hidden = p.complementary.loc[(f"day {lm.day}", row), col] or 0 < published < T
                assert np.isnan(value) if hidden else value == published, (lm.day, row, col)
                checked += 1
                moved += published != len(ids)
        total = p.display().loc[(f"day {lm.day}", "All tiers")]
        note = next(a.text for a in export.figure.layout.annotations if a.name == "note")
        assert f"Day {lm.day}: n={total.n:,}, events={total.events:,}." in note.replace("<br>", " ")
    assert checked == 2 * (4 + 3 + 2 + 3) and moved >= 4
    assert page_exports.PERSON_WEEKS_NOTE.format(t=T) in export.lines()
    assert audit_page_export("dose_response", export) == []


def test_dose_response_note_gives_each_days_total_as_the_table_does(sample):  # noqa: F811
    """Westfield (78 people), landmarks 30 to 120 days: each day's total n and events in the figure's
    note is the table's published cell, '<11' where the table hides it (two of the days' events)."""
    westfield = Filters(sites=("Westfield",))
    analysis = analyse_engagement(sample, "retention", filters=westfield, landmarks=(30, 60, 90, 120))
    export = page_exports.dose_response_export(analysis, westfield, analysis_cutoff(sample), secret=SECRET)
    note = next(a.text for a in export.figure.layout.annotations if a.name == "note").replace("<br>", " ")
    shown = export.table.display()
    hidden = 0
    for lm in analysis.landmarks:
        total = shown.loc[(f"day {lm.day}", "All tiers")]
        n, events = (v.replace("<", "&lt;") if isinstance(v, str) else f"{v:,}" for v in (total.n, total.events))
        assert f"Day {lm.day}: n={n}, events={events}." in note
        hidden += isinstance(total.events, str)
    assert [lm.day for lm in analysis.landmarks] == [30, 60, 90, 120] and hidden == 2
    assert not re.search(r"\b(?:n|events)=([1-9]|10)\b", note)
    assert audit_page_export("dose_response", export) == []


def test_landmark_life_table_is_perturbed_from_its_members(sample, keyed):  # noqa: F811
    analysis, secret, built = keyed
    export = built["landmark_km"]
    lt = export.life_table
    assert lt.noise == NOISE and audit_km(export) == []
    members = landmark_members(sample, 60)
    shown = export.table.values
    checked = moved = 0
    for g in shown.index:
        group = members if g == ALL else members[members.tier == g.removesuffix(" meetings")]
        published = _published(secret, group.participant_id)
        assert abs(published - len(group)) <= NOISE
        hidden = export.table.complementary.loc[g, "n"] or 0 < published < T
        assert np.isnan(shown.loc[g, "n"]) if hidden else shown.loc[g, "n"] == published
        for day in (30, 90, 180, 365):
            if pd.notna(shown.loc[g, f"at_risk_{day}"]):
                later = group.participant_id[group.days_after >= day]
                assert shown.loc[g, f"at_risk_{day}"] == _published(secret, later)
                assert abs(shown.loc[g, f"at_risk_{day}"] - len(later)) <= NOISE
                checked += 1
                moved += shown.loc[g, f"at_risk_{day}"] != len(later)
    assert checked >= 4 and moved >= 1
    n, events = _published(secret, members.participant_id), _published(secret, members.participant_id[members.event])
    assert export.meta.n == f"n = {n:,} participants, {events:,} events after day 60" and lt.n[ALL] == n
    assert privacy.method_statement(T, perturbed=True) in export.lines()


def test_the_same_secret_gives_the_same_files_and_another_secret_other_counts(sample, keyed):  # noqa: F811
    analysis, secret, built = keyed
    again = build_keyed(sample, analysis, secret)
    assert {k: e.data("csv") for k, e in again.items()} == {k: e.data("csv") for k, e in built.items()}
    assert again["dose_response"].figure.to_json() == built["dose_response"].figure.to_json()
    other = build_keyed(sample, analysis, bytes(32))
    assert other["hazard_ratios"].data("csv") != built["hazard_ratios"].data("csv") or \
        other["dose_response"].data("csv") != built["dose_response"].data("csv")


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.sampled_from([(13, 27), (12, 30), (5, 35), (40,), (9, 14, 20)]), seed=st.integers(0, 10_000))
def test_small_programs_pass_the_audit_with_perturbed_counts(tmp_path_factory, sizes, seed):
    names = ["Recovery Mentoring", "Community Peer Support", "Online Recovery Community"][:len(sizes)]
    store = small_store(tmp_path_factory.mktemp("small"), dict(zip(names, sizes)), seed)
    try:
        try:
            analysis = analyse_engagement(store, "retention")
        except NoData:  # no drop-outs among them
            return
        secret = cell_key_secret(store)
        built = build_keyed(store, analysis, secret, day=30)
        assert {"hazard_ratios", "naive", "dose_response"} <= set(built)
        for name, export in [*built.items(), *build_keyed(store, analysis, secret, day=60).items()]:
            assert export.table.perturbed == (export.table.counts if name == "landmark_km" else ("n", "events"))
            assert audit_page_export(name, export) == [], name
    finally:
        store.close()


def test_the_audit_fails_on_the_perturbed_dose_response_when_complements_are_off(sample, keyed, monkeypatch):  # noqa: F811
    """Complementary suppression off (privacy._pick never picks): day 60's 4-7 meetings tier has
    "<11" events (true 11, published 9 or 10) beside the 8+ tier's and the day's total, and the
    auditor, reading each published count as +/- 2, narrows it below the "<11" range."""
    analysis, secret, built = keyed
    assert audit_page_export("dose_response", built["dose_response"]) == []
    monkeypatch.setattr(privacy, "_pick", lambda *a: None)
    export = page_exports.dose_response_export(analysis, EVERYONE, analysis_cutoff(sample), secret=secret)
    failures = audit_page_export("dose_response", export)
    assert any("events" in f and "day 60" in f for f in failures), failures
