"""The fast paths of the engagement analyses give the numbers of the plain definitions.

person_weeks counts activity into weeks with numpy instead of one big SQL query, and the
models run on distinct covariate patterns with counts instead of every row. These tests
check each shortcut against the direct computation: the person-week table against its
SQL definition (person_weeks_sql), the first-days counts against SQL counts, the
time-varying Cox on patterns against the fit on every row, the GEE on patterns against
statsmodels' GEE, and the pattern grouping against pandas.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from analytics.stats.result import Estimate
from analytics.stats.patterns import distinct_patterns
from analytics.analyses import engagement
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import (
    DESCRIPTORS,
    OutcomeSettings,
    durations_sql,
    resolve_cutoff,
)
from analytics.outcomes.person_weeks import person_weeks, person_weeks_sql
from analytics.store.connection import Store
from analytics.stats.tvcox import fit_counting_cox

FILTERS = [Filters(), Filters(programs=("Online Recovery Community",)), Filters(enrolled_from=dt.date(2025, 1, 1))]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Store:
    store = Store.open(ensure_store(tmp_path_factory.mktemp("eng-fast") / "sample.duckdb"), read_only=True)
    yield store
    store.close()


@pytest.mark.parametrize("outcome", ["retention", "sobriety"])
@pytest.mark.parametrize("filters", FILTERS, ids=["all", "program", "enrolled_from"])
def test_person_week_table_equals_its_sql_definition(sample: Store, outcome: str, filters: Filters):
    sql, params = person_weeks_sql(sample, outcome, OutcomeSettings(), filters)
    expected = sample.categorical_df(sql, params)
    expected["participant_id"] = expected.participant_id.astype(str)
    expected["event"] = expected.event.astype(bool)
    pw = person_weeks(sample, outcome, OutcomeSettings(), filters)
    got = pw.frame
    pd.testing.assert_frame_equal(got, expected, check_categorical=False, check_exact=True)
    for col in DESCRIPTORS:  # same labels (the order of the categories may differ)
        assert (got[col].astype(str) == expected[col].astype(str)).all()
    assert pw.participants == expected.participant_id.nunique()
    assert pw.events == int(expected.event.sum())
    durations, params = durations_sql(outcome, resolve_cutoff(sample, OutcomeSettings()), OutcomeSettings(), filters)
    left = dict(sample.rows(f"SELECT left_out, count(*) FROM ({durations}) WHERE left_out IS NOT NULL GROUP BY 1",
                            params))
    assert pw.left_out == left


@pytest.mark.parametrize("outcome", ["retention", "sobriety"])
def test_first_days_counts_equal_sql_counts(sample: Store, outcome: str):
    days = (1, 6, 7, 8, 30, 60, 90, 400)
    pw = person_weeks(sample, outcome, first_days=days)
    durations, params = durations_sql(outcome, resolve_cutoff(sample, OutcomeSettings()), OutcomeSettings(), Filters())
    for d in days:
        expected = sample.df(f"""
            WITH dur AS ({durations})
            SELECT participant_id,
              (SELECT count(*) FROM attendance a WHERE a.participant_id = f.participant_id
                 AND a.attended_on >= f.start AND a.attended_on < f.start + $d AND a.attended_on <= f.stop) AS m,
              (SELECT count(*) FROM checkins c WHERE c.participant_id = f.participant_id
                 AND c.checked_in_on >= f.start AND c.checked_in_on < f.start + $d AND c.checked_in_on <= f.stop) AS c,
              (SELECT count(*) FROM mentoring s WHERE s.participant_id = f.participant_id
                 AND s.met_on >= f.start AND s.met_on < f.start + $d AND s.met_on <= f.stop) AS s
            FROM dur f WHERE left_out IS NULL ORDER BY participant_id""", {**params, "d": d})
        assert expected.participant_id.tolist() == pw.people.participant_id.tolist()
        np.testing.assert_array_equal(pw.first_days[d], expected[["m", "c", "s"]].to_numpy(), err_msg=f"day {d}")


def test_time_varying_on_patterns_equals_the_fit_on_every_row(sample: Store):
    pw = person_weeks(sample, "retention")
    main, others = engagement.fit_time_varying(pw, ["program", "gender"])
    frame = pw.frame
    frame["in_person_prev"] = frame.meetings_prev - frame.online_prev
    X = pd.concat([frame[list(engagement.SPLIT_TERMS)].astype(float),
                   engagement._dummies(frame, ["program", "gender"])], axis=1)
    got = {t.term: t for t in main + others}
    # on every row the reference level is the most frequent among person-weeks; on the patterns,
    # among the patterns: compare the engagement terms (they do not depend on the reference)
    full = fit_counting_cox(frame.tstart, frame.tstop, frame.event, X).table().set_index("term")
    for col, label in engagement.SPLIT_TERMS.items():
        np.testing.assert_allclose([got[label].estimate, *got[label].ci, got[label].p],
                                   full.loc[col, ["hr", "lo", "hi", "p"]].to_numpy(float), rtol=1e-8)


@pytest.mark.parametrize("outcome", ["retention", "sobriety"])
def test_gee_on_patterns_equals_statsmodels_gee(sample: Store, outcome: str):
    pw = person_weeks(sample, outcome)
    got = {t.term: t for t in engagement.gee(pw, ["program"])}
    frame = pw.frame
    for column, name, family in (("used_any", "use", sm.families.Binomial()),
                                 ("craving", "craving", sm.families.Gaussian())):
        rows = frame[frame[column].notna()]
        X = engagement._gee_design(rows, ["program"])
        ref = sm.GEE(rows[column].astype(float), X, groups=rows.participant_id, family=family,
                     cov_struct=sm.cov_struct.Independence()).fit()
        f = np.exp if family.__class__ is sm.families.Binomial else float
        for col, label in engagement.TERMS.items():
            term = got[f"{name}: {label}"]
            assert term.estimate == pytest.approx(float(f(ref.params[col])), rel=1e-8)
            assert term.p == pytest.approx(float(ref.pvalues[col]), rel=1e-6)
            lo = ref.params[col] - engagement.Z95 * ref.bse[col]
            assert term.ci[0] == pytest.approx(float(f(lo)), rel=1e-8)


def test_patterns_group_like_pandas():
    rng = np.random.default_rng(3)
    for highs in ((3, 5, 2), (10**6, 10**6, 10**6, 7)):  # the second needs renumbering (overflow)
        cols = [rng.integers(0, h, 20_000) for h in highs]
        rep, counts, inv = distinct_patterns(cols, inverse=True)
        frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
        expected = frame.value_counts()
        got = pd.Series(counts, index=pd.MultiIndex.from_frame(frame.iloc[rep]))
        assert counts.sum() == len(frame) and len(got) == len(expected)
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
        np.testing.assert_array_equal(frame.to_numpy()[rep][inv], frame.to_numpy())  # each row's group


# The analysis holds BLAS to one thread while its model threads run; a fit called alone uses
# every core, and a sum split over threads adds in another order: the same numbers to about
# 1e-15, so they are compared to RTOL, not with ==.
RTOL = 1e-9


def assert_close(got, expected, path: str = "result") -> None:
    """Dataclasses, lists, tuples and dicts equal field by field; floats to RTOL, the rest exactly."""
    if dataclasses.is_dataclass(got):
        assert type(got) is type(expected), path
        for f in dataclasses.fields(got):
            assert_close(getattr(got, f.name), getattr(expected, f.name), f"{path}.{f.name}")
    elif isinstance(got, (list, tuple)):
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(got, dict):
        assert got.keys() == expected.keys(), path
        for key in got:
            assert_close(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(got, float) or isinstance(expected, float):
        assert got == pytest.approx(expected, rel=RTOL, abs=0, nan_ok=True), path
    else:
        assert got == expected, path


def test_assert_close_tells_rounding_from_a_difference():
    term = Estimate("meetings", 0.85, (0.8, 0.9), 1e-12)
    assert_close(term, Estimate("meetings", 0.85 * (1 + 1e-14), (0.8, 0.9), 1e-12 * (1 + 1e-13)))
    for other in (Estimate("meetings", 0.85 * (1 + 1e-6), (0.8, 0.9), 1e-12),
                  Estimate("check-ins", 0.85, (0.8, 0.9), 1e-12),
                  Estimate("meetings", 0.85, (0.8, 0.91), 1e-12)):
        with pytest.raises(AssertionError):
            assert_close(term, other)
    with pytest.raises(AssertionError):
        assert_close([term], [term, term])


@pytest.mark.parametrize("blas_threads", [1, None], ids=["blas-1-thread", "blas-default"])
def test_analysis_is_the_sum_of_its_parts(sample: Store, blas_threads: int | None):
    """analyse_engagement runs the models on threads: the same numbers as one by one, whether
    the fits alone run with one BLAS thread (as the analysis does) or with every core."""
    whole = engagement.analyse_engagement(sample, "retention", adjust=("program", "age_band"))
    pw = person_weeks(sample, "retention", first_days=engagement.LANDMARKS)
    adjust = ["program", "age_band"]
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        assert_close(whole.time_varying, engagement.fit_time_varying(pw, adjust)[0], "time_varying")
        assert_close(whole.gee, engagement.gee(pw, adjust), "gee")
        assert_close(whole.naive, engagement.naive(pw, adjust), "naive")
        assert [lm.day for lm in whole.landmarks] == list(engagement.LANDMARKS)
        for lm in whole.landmarks:
            alone = engagement.fit_landmark(pw, lm.day, adjust)
            assert_close((lm.n, lm.events, lm.terms, lm.tiers, lm.odds),
                         (alone.n, alone.events, alone.terms, alone.tiers, alone.odds), f"landmark {lm.day}")
