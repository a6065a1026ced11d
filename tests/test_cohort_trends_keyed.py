"""The cohort trends download perturbed (issue 12): cohort_trends(keyed=True) returns the counts of
people per (cohort, month) with their cell keys, computed in DuckDB; the export publishes each count as
cellkey.perturb of its members (worked out here with pandas from the raw tables), the share of
reported use from the published counts, means at one decimal, and passes the export auditor."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from director_data import hand, sample  # noqa: F401
from hypothesis import HealthCheck, given, settings, strategies as st

from analytics.analyses import cohorts
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.filters import Filters
from analytics.publish import cellkey, page_exports, privacy
from analytics.publish.exports import ChartExport
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from disclosure_data import small_store
from test_export_audit import audit_page_export

T = privacy.DEFAULT_THRESHOLD
EVERYONE = Filters()
MEASURES = {"used_share": ["cohort_n", "participants", "reported_use", "no_use"],
            "craving": ["cohort_n", "participants", "craving_n"], "mood": ["cohort_n", "participants", "mood_n"]}
COUNTS = ["cohort_n", "participants", "reported_use", "no_use", "craving_n", "mood_n"]


def members(store: Store) -> dict[tuple[str, int], dict[str, set[str]]]:
    """Per (quarter cohort, month since enrollment): the participants behind each count, from the raw
    tables with pandas (not the product's SQL)."""
    cutoff = resolve_cutoff(store, OutcomeSettings())
    p = store.df("SELECT participant_id, enrolled_on FROM participants")
    p["enrolled_on"] = pd.to_datetime(p.enrolled_on)
    p = p[p.enrolled_on.dt.date <= cutoff]
    p["cohort"] = p.enrolled_on.dt.year.astype(str) + "-Q" + p.enrolled_on.dt.quarter.astype(str)
    c = store.df("SELECT participant_id, checked_in_on, used, craving, mood FROM checkins").merge(p, on="participant_id")
    c["day"] = pd.to_datetime(c.checked_in_on)
    c = c[(c.day.dt.date <= cutoff) & (c.day >= c.enrolled_on)]
    c["month"] = np.floor((c.day - c.enrolled_on).dt.days / cohorts.MONTH_DAYS).astype(int)
    per = c.groupby(["cohort", "month", "participant_id"]).agg(used=("used", "any"), craving=("craving", "count"),
                                                               mood=("mood", "count")).reset_index()
    sizes = p.groupby("cohort").participant_id.agg(set)
    out = {}
    for (cohort, month), g in per.groupby(["cohort", "month"]):
        out[(cohort, int(month))] = {"cohort_n": sizes[cohort], "participants": set(g.participant_id),
                                     "reported_use": set(g.participant_id[g.used]),
                                     "no_use": set(g.participant_id[~g.used]),
                                     "craving_n": set(g.participant_id[g.craving > 0]),
                                     "mood_n": set(g.participant_id[g.mood > 0])}
    return out


def exports(store: Store) -> dict[str, ChartExport]:
    trends = cohorts.cohort_trends(store, EVERYONE, "quarter", keyed=True)
    cutoff = resolve_cutoff(store, OutcomeSettings())
    return {m: page_exports.cohort_trends_export(trends, m, "quarter", EVERYONE, cutoff) for m in MEASURES}


@pytest.mark.parametrize("name", ["hand", "sample"])
def test_the_keyed_sql_counts_are_the_unkeyed_ones_and_their_members(request, name):
    store = request.getfixturevalue(name)
    plain = cohorts.cohort_trends(store, EVERYONE, "quarter")
    keyed = cohorts.cohort_trends(store, EVERYONE, "quarter", keyed=True)
    pd.testing.assert_frame_equal(keyed[plain.columns], plain)
    assert [c for c in keyed.columns if c.endswith("_key")] == [f"{c}_key" for c in COUNTS]
    truth = members(store)
    secret = cell_key_secret(store)
    assert len(keyed) == len(truth) > 3
    for row in keyed.itertuples():
        cell = truth[(row.cohort, row.month)]
        for c in COUNTS:
            assert getattr(row, c) == len(cell[c]), (row.cohort, row.month, c)
            assert int(getattr(row, f"{c}_key")) == cellkey.cell_key(secret, sorted(cell[c])), (row.cohort, c)
    assert (plain.reported_use + plain.no_use == plain.participants).all()
    np.testing.assert_allclose(plain.used_share, plain.reported_use / plain.participants)


@pytest.mark.parametrize("name", ["hand", "sample"])
def test_every_published_count_is_the_perturbed_count_of_its_members(request, name):
    store = request.getfixturevalue(name)
    truth, secret = members(store), cell_key_secret(store)
    checked = moved = 0
    for measure, counts in MEASURES.items():
        p = exports(store)[measure].table
        assert p.perturbed == tuple(counts)
        for (cohort, month), row in p.values.iterrows():
            for c in counts:
                true = len(truth[(cohort, month)][c])
                if pd.isna(row[c]):  # hidden: "<11" for a perturbed count of 1-10, "*" otherwise
                    assert p.primary.loc[(cohort, month), c] == (0 < cellkey.perturb(secret, truth[(cohort, month)][c]) < T)
                    continue
                assert row[c] == cellkey.perturb(secret, truth[(cohort, month)][c]), (cohort, month, c)
                assert abs(row[c] - true) <= cellkey.MAX_NOISE
                checked, moved = checked + 1, moved + (row[c] != true)
    if name == "sample":
        assert checked > 100 and moved > checked / 2  # noise 0 one time in five: most counts moved


def test_the_share_is_the_published_reported_use_over_the_published_participants(sample):  # noqa: F811
    trends = cohorts.cohort_trends(sample, EVERYONE, "quarter")
    export = exports(sample)["used_share"]
    v = export.table.values
    shown = v[v.used_share.notna()]
    assert len(shown) > 20
    np.testing.assert_array_equal(shown.used_share, shown.reported_use / shown.participants)
    true = trends.set_index(["cohort", "month"]).loc[shown.index]
    assert (shown.used_share != true.used_share).sum() > len(shown) / 2  # not the true shares
    assert ((shown.reported_use < T) | (shown.no_use < T)).sum() == 0
    for trace in export.figure.data:  # the published shares (a gap where hidden), where 11 or more check in
        drawn = v.loc[trace.name]
        drawn = drawn[drawn.participants >= T]
        np.testing.assert_allclose(np.asarray(trace.y, float), drawn.used_share.to_numpy(float) * 100)


@pytest.mark.parametrize("measure", ["craving", "mood"])
def test_means_are_published_to_one_decimal_in_the_file_and_the_chart(sample, measure):  # noqa: F811
    export = exports(sample)[measure]
    values = export.table.values[measure].dropna()
    assert len(values) > 20 and (values == values.round(1)).all()
    true = cohorts.cohort_trends(sample, EVERYONE, "quarter").set_index(["cohort", "month"])[measure]
    np.testing.assert_allclose(values, true.loc[values.index].round(1))
    rows = list(csv.reader(io.StringIO(export.data("csv").decode("utf-8-sig"))))
    column = rows[[i for i, r in enumerate(rows) if measure in r][0]].index(measure)
    digits = [r[column].split(".")[1] for r in rows if len(r) > column and "." in r[column]]
    assert digits and max(len(d) for d in digits) == 1
    ys = [y for trace in export.figure.data for y in trace.y if y is not None and not np.isnan(y)]
    assert ys and all(round(y, 1) == y for y in ys)
    assert "Counts of people are first perturbed" in export.table.method()


@pytest.mark.parametrize("name", ["hand", "sample"])
def test_the_keyed_trends_exports_pass_the_audit(request, name):
    for measure, export in exports(request.getfixturevalue(name)).items():
        assert audit_page_export(f"cohort_{measure.split('_')[0]}", export) == [], measure


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.sampled_from([(13, 27), (12, 30), (5, 35), (11, 11), (40,), (9, 14, 20)]),
       seed=st.integers(0, 10_000))
def test_small_programs_pass_the_audit_with_keyed_trends(tmp_path_factory, sizes, seed):
    names = ["Recovery Mentoring", "Community Peer Support", "Online Recovery Community"][:len(sizes)]
    store = small_store(tmp_path_factory.mktemp("small"), dict(zip(names, sizes)), seed)
    try:
        truth, secret = members(store), cell_key_secret(store)
        for measure, export in exports(store).items():
            assert audit_page_export(f"cohort_{measure.split('_')[0]}", export) == [], measure
            for (cohort, month), row in export.table.values.iterrows():
                for c in MEASURES[measure]:
                    if pd.notna(row[c]):
                        assert row[c] == cellkey.perturb(secret, truth[(cohort, month)][c])
                        assert row[c] == 0 or row[c] >= T
    finally:
        store.close()
