"""Small-cell suppression: hand-worked examples and properties over random count tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.publish.privacy import (
    COMPLEMENTARY,
    DEFAULT_THRESHOLD,
    check_threshold,
    method_statement,
    protect,
    small_marker,
    truncate_at_risk,
)

SMALL = small_marker(DEFAULT_THRESHOLD)
STAR = COMPLEMENTARY


def test_markers_and_method_statement() -> None:
    assert SMALL == "<11"
    assert small_marker(20) == "<20"
    text = method_statement()
    assert '"<11"' in text
    assert '"*"' in text
    assert "1 to 10" in text
    assert "fewer than 11" in text
    assert '"<25"' in method_statement(25)
    assert "cell key method" in method_statement(perturbed=True) and "cell key" not in text
    assert method_statement(perturbed=True).endswith(text)


@pytest.mark.parametrize("bad", [10, 0, -11, 11.0, 11.5, "11", True, None])
def test_threshold_below_11_or_not_whole_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_threshold(bad)  # type: ignore[arg-type]


def test_threshold_10_refused_everywhere() -> None:
    table = pd.DataFrame({"n": [5, 50]})
    with pytest.raises(ValueError, match="at least 11"):
        protect(table, counts=["n"], threshold=10)
    with pytest.raises(ValueError, match="at least 11"):
        truncate_at_risk(pd.DataFrame({"at_risk": [50]}), threshold=10)
    with pytest.raises(ValueError, match="at least 11"):
        method_statement(10)
    assert check_threshold(11) == 11
    assert check_threshold(np.int64(12)) == 12


def test_one_small_group_in_a_table_with_a_total_row() -> None:
    table = pd.DataFrame({"n": [4, 20, 30, 54]}, index=["A", "B", "C", "Total"])
    original = table.copy()
    p = protect(table, counts=["n"], total_row="Total")
    assert p.display()["n"].tolist() == [SMALL, STAR, 30, 54]
    assert p.primary["n"].tolist() == [True, False, False, False]
    assert p.complementary["n"].tolist() == [False, True, False, False]
    assert p.suppressed["n"].tolist() == [True, True, False, False]
    assert p.values["n"].tolist()[2:] == [30.0, 54.0]
    assert p.values["n"].isna().tolist() == [True, True, False, False]
    assert p.method() == method_statement(11)
    pd.testing.assert_frame_equal(table, original)  # input untouched


def test_cohort_by_month_with_row_totals_and_a_total_row() -> None:
    table = pd.DataFrame(
        {"m0": [30, 25, 40, 95], "m1": [5, 20, 22, 47], "Total": [35, 45, 62, 142]},
        index=["2025-01", "2025-02", "2025-03", "Total"])
    p = protect(table, counts=["m0", "m1", "Total"], sums=[(["m0", "m1"], "Total")], total_row="Total")
    expected = pd.DataFrame(
        {"m0": [STAR, STAR, 40, 95], "m1": [SMALL, STAR, 22, 47], "Total": [35, 45, 62, 142]},
        index=table.index, dtype=object)
    pd.testing.assert_frame_equal(p.display(), expected)
    assert int(p.primary.to_numpy().sum()) == 1
    assert int(p.complementary.to_numpy().sum()) == 3


def test_zeros_are_shown_and_a_small_total_is_itself_hidden() -> None:
    table = pd.DataFrame({"a": [5], "b": [0], "c": [0], "n": [5]})
    p = protect(table, counts=["a", "b", "c", "n"], sums=[(["a", "b", "c"], "n")])
    assert p.display().iloc[0].tolist() == [SMALL, 0, 0, SMALL]
    assert not p.complementary.to_numpy().any()


def test_complement_is_the_smallest_non_zero_part() -> None:
    table = pd.DataFrame({"a": [5, 5], "b": [0, 40], "c": [30, 12], "n": [35, 57]})
    p = protect(table, counts=["a", "b", "c", "n"], sums=[(["a", "b", "c"], "n")])
    assert p.display().to_numpy().tolist() == [[SMALL, 0, STAR, 35], [SMALL, 40, STAR, 57]]


def test_complement_falls_back_to_the_total_then_to_a_zero() -> None:
    table = pd.DataFrame({"a": [5, 20, 25], "b": [20, 0, 20], "T": [25, 20, 45]}, index=["r0", "r1", "Total"])
    p = protect(table, counts=["a", "b", "T"], sums=[(["a", "b"], "T")], total_row="Total")
    # column b: r0.b is hidden, the only other part is 0, so its total is hidden; that cascades
    assert p.display().to_numpy().tolist() == [[SMALL, STAR, STAR], [STAR, 0, STAR], [STAR, STAR, 45]]
    no_total = pd.DataFrame({"a": [5.0], "b": [0.0], "n": [np.nan]})  # total not applicable
    shown = protect(no_total, counts=["a", "b", "n"], sums=[(["a", "b"], "n")]).display()
    assert shown.iloc[0, :2].tolist() == [SMALL, STAR]


def test_zero_is_not_suppressed_and_a_table_without_totals_only_gets_primary() -> None:
    table = pd.DataFrame({"n": [0, 12, 0, 3, 25]}, index=[10, 20, 30, 40, 50])
    p = protect(table, counts=["n"])
    assert p.display()["n"].tolist() == [0, 12, 0, SMALL, 25]
    assert not p.complementary.to_numpy().any()


def test_derived_rates_follow_their_counts() -> None:
    table = pd.DataFrame({
        "site": ["East", "West", "North"],
        "n": [50, 40, 60], "retained": [45, 30, 40], "lost": [5, 10, 20],
        "retained_pct": [90.0, 75.0, 66.7], "mean_days": [120.5, 98.0, 101.0],
    }, index=pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]))
    p = protect(table, counts=["n", "retained", "lost"], sums=[(["retained", "lost"], "n")],
                derived={"retained_pct": ["retained", "n"], "mean_days": ["n"]})
    shown = p.display()
    assert shown["lost"].tolist() == [SMALL, SMALL, 20]
    assert shown["retained"].tolist() == [STAR, STAR, 40]  # smallest other part, not the total
    assert shown["n"].tolist() == [50, 40, 60]
    assert shown["retained_pct"].tolist() == [STAR, STAR, 66.7]
    assert shown["mean_days"].tolist() == [120.5, 98.0, 101.0]
    assert shown["site"].tolist() == ["East", "West", "North"]
    assert p.derived["retained_pct"].tolist() == [True, True, False]
    assert not p.derived[["n", "retained", "lost", "mean_days", "site"]].to_numpy().any()
    assert p.values["retained_pct"].isna().tolist() == [True, True, False]
    assert p.values["site"].tolist() == ["East", "West", "North"]


def test_threshold_20() -> None:
    table = pd.DataFrame({"n": [15, 25, 11, 0]})
    p = protect(table, counts=["n"], threshold=20)
    assert p.display()["n"].tolist() == ["<20", 25, "<20", 0]
    assert p.threshold == 20
    assert '"<20"' in p.method()


def test_not_applicable_counts_stay_blank() -> None:
    table = pd.DataFrame({"n": [np.nan, 3.0, 14.0]})
    shown = protect(table, counts=["n"]).display()["n"].tolist()
    assert np.isnan(shown[0])
    assert shown[1:] == [SMALL, 14]


def test_bad_declarations_are_refused() -> None:
    table = pd.DataFrame({"a": [1], "n": [1], "rate": [1.0]}, index=["x"])
    with pytest.raises(ValueError, match="not in the table"):
        protect(table, counts=["missing"])
    with pytest.raises(ValueError, match="sums"):
        protect(table, counts=["a"], sums=[(["a"], "n")])
    with pytest.raises(ValueError, match="derived"):
        protect(table, counts=["a"], derived={"rate": ["n"]})
    with pytest.raises(ValueError, match="total_row"):
        protect(table, counts=["a"], total_row="Total")


def test_truncate_at_risk_per_group() -> None:
    curve = pd.DataFrame({
        "group": ["a"] * 5 + ["b"] * 3 + ["c"] * 2,
        "time": [0, 10, 20, 30, 40, 0, 5, 9, 0, 7],
        "at_risk": [30, 20, 11, 9, 12, 8, 8, 7, 40, 35],
        "survival": [1.0, 0.9, 0.8, 0.7, 0.6, 1.0, 0.9, 0.8, 1.0, 0.95],
    }, index=range(100, 110))
    original = curve.copy()
    out = truncate_at_risk(curve, by="group")
    assert out.index.tolist() == [100, 101, 102, 108, 109]  # a stops before at_risk 9 (even if 12 later)
    assert out["time"].tolist() == [0, 10, 20, 0, 7]
    pd.testing.assert_frame_equal(curve, original)
    assert truncate_at_risk(curve, by="group", threshold=30)["at_risk"].tolist() == [30, 40, 35]
    overall = truncate_at_risk(curve.iloc[:5], threshold=11)
    assert overall["at_risk"].tolist() == [30, 20, 11]


# --- properties over random count tables ------------------------------------------------

COUNT = st.one_of(st.just(0), st.integers(1, 12), st.integers(0, 40), st.integers(0, 500))


@st.composite
def margin_tables(draw: st.DrawFn) -> tuple[pd.DataFrame, list[str], int]:
    """Cohort x column count tables with a Total column (row sums) and a Total row."""
    n_rows = draw(st.integers(1, 7))
    n_cols = draw(st.integers(1, 7))
    parts = [f"c{j}" for j in range(n_cols)]
    cells = draw(st.lists(st.lists(COUNT, min_size=n_cols, max_size=n_cols), min_size=n_rows, max_size=n_rows))
    table = pd.DataFrame(cells, columns=parts, index=[f"r{i}" for i in range(n_rows)])
    table["Total"] = table[parts].sum(axis=1)
    table.loc["Total"] = table.sum(axis=0)
    table["rate"] = table["c0"] / table["Total"].where(table["Total"] > 0)
    return table, parts, draw(st.integers(11, 30))


def _protect(table: pd.DataFrame, parts: list[str], threshold: int):
    return protect(table, counts=[*parts, "Total"], sums=[(parts, "Total")], total_row="Total",
                   derived={"rate": ["c0", "Total"]}, threshold=threshold)


@settings(max_examples=300, deadline=None)
@given(margin_tables())
def test_properties_of_suppressed_margin_tables(case: tuple[pd.DataFrame, list[str], int]) -> None:
    table, parts, threshold = case
    original = table.copy()
    p = _protect(table, parts, threshold)
    counts = [*parts, "Total"]
    shown = p.display()
    hidden = p.suppressed

    # (1) no count of 1..threshold-1 is ever displayed
    for value in shown[counts].to_numpy().ravel():
        assert isinstance(value, str) or not 0 < value < threshold

    # (2) no relation has exactly one hidden member
    for label in table.index:
        assert hidden.loc[label, counts].sum() != 1, f"row {label}"
    for col in counts:
        assert hidden[col].sum() != 1, f"column {col}"

    # (3) the derived rate is hidden wherever one of its counts is hidden
    assert (hidden["rate"] == (hidden["c0"] | hidden["Total"])).all()
    assert (shown["rate"].to_numpy()[hidden["rate"].to_numpy()] == COMPLEMENTARY).all()

    # (4) everything not hidden is unchanged; the input is untouched; masks are disjoint
    kept = ~hidden
    pd.testing.assert_frame_equal(table, original)
    assert np.array_equal(p.values[kept].to_numpy(dtype=float), table[kept].to_numpy(dtype=float), equal_nan=True)
    assert p.values[hidden].isna().all().all()
    assert not (p.primary & p.complementary).to_numpy().any()
    assert p.primary[counts].eq((table[counts] > 0) & (table[counts] < threshold)).all().all()
    assert (shown.to_numpy()[p.primary.to_numpy()] == small_marker(threshold)).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(COUNT, min_size=1, max_size=10), st.integers(11, 20))
def test_properties_one_dimensional_tables_with_dates_as_index(values: list[int], threshold: int) -> None:
    index = [dt.date(2025, 1, 1) + dt.timedelta(days=7 * i) for i in range(len(values))]
    table = pd.DataFrame({"n": values}, index=index)
    table.loc["Total"] = sum(values)
    p = protect(table, counts=["n"], total_row="Total", threshold=threshold)
    assert p.suppressed["n"].sum() != 1
    assert all(isinstance(v, str) or not 0 < v < threshold for v in p.display()["n"])


def test_two_small_cells_under_a_shown_total_get_a_complement():
    """Two "<11" cells adding up to 16 under a shown total are each 6 to 10: a third cell hides too."""
    from analytics.publish import privacy

    table = pd.DataFrame({"n": [7, 9, 40, 56]}, index=["A", "B", "C", "All"])
    p = privacy.protect(table, counts=["n"], total_row="All")
    assert p.primary.n.tolist() == [True, True, False, False]
    assert p.complementary.n.tolist() == [False, False, True, False]
