"""Exports over random filters: no count of 1-10 in any table or on any exported survival
chart, curves stop before fewer than the threshold remain, files carry the method."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from analytics.analyses import cohorts
from analytics.publish import exports
from analytics.publish import privacy
from analytics.outcomes.filters import Filters
from analytics.analyses.survival import NoData, analyse

from director_data import sample  # noqa: F401

PROGRAMS = ["Community Peer Support", "Online Recovery Community", "Recovery Mentoring"]
SITES = ["Downtown", "Eastgate", "Northside", "Online", "Riverside", "Westfield"]
filters_strategy = st.builds(
    Filters,
    programs=st.lists(st.sampled_from(PROGRAMS), max_size=2, unique=True).map(tuple),
    sites=st.lists(st.sampled_from(SITES), max_size=3, unique=True).map(tuple),
    enrolled_from=st.one_of(st.none(), st.dates(dt.date(2024, 4, 1), dt.date(2026, 6, 1))),
    enrolled_to=st.none(),
)
SMALL = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def small_numbers(export: exports.ChartExport) -> list:
    """Counts of 1..threshold-1 shown in the export's table."""
    shown = export.table.display()
    found = []
    for col in export.table.counts:
        found += [v for v in shown[col] if not isinstance(v, str) and v == v and 0 < v < export.table.threshold]
    return found


@SMALL
@given(filters=filters_strategy, by=st.sampled_from([None, "program", "site", "cohort_quarter"]),
       outcome=st.sampled_from(["retention", "sobriety"]), threshold=st.sampled_from([11, 15]))
def test_km_exports_never_show_a_small_count(sample, filters, by, outcome, threshold):  # noqa: F811
    try:
        a = analyse(sample, outcome, by=by, filters=filters)
        export = exports.km_export(a, threshold)
    except (NoData, exports.TooFew):
        return
    assert small_numbers(export) == []
    hidden_n = export.table.suppressed["n"]
    assert hidden_n.drop(exports.ALL_ROW, errors="ignore").sum() != 1 or exports.ALL_ROW not in hidden_n.index
    for trace in export.figure.data:
        meta = trace.meta or {}
        if meta.get("role") == "curve":  # customdata = numbers at risk along the curve
            assert meta["group"] not in hidden_n[hidden_n].index
            assert min(trace.customdata[1:], default=threshold) >= threshold
        if meta.get("role") == "risk":
            for text in trace.text:
                assert not (text.replace(",", "").isdigit() and 0 < int(text.replace(",", "")) < threshold)


@SMALL
@given(filters=filters_strategy, by=st.sampled_from(["month", "quarter"]))
def test_cohort_exports_hide_small_cohorts_and_cells(sample, filters, by):  # noqa: F811
    r = cohorts.cohort_retention(sample, filters, by)
    if r.empty:
        return
    safe, table = exports.protect_cohorts(r)
    assert (safe.n >= privacy.DEFAULT_THRESHOLD).all()
    followed = safe.at_risk.astype(float)
    shown_share = safe.shares.notna()
    assert not (shown_share & (followed < privacy.DEFAULT_THRESHOLD)).any().any()  # rows stop, no late 0%
    shown = table.display()
    for col in table.counts:
        assert not [v for v in shown[col] if not isinstance(v, str) and v == v and 0 < v < 11]


def test_files_carry_title_meta_and_method(sample):  # noqa: F811
    a = analyse(sample, "retention", by="site")
    export = exports.km_export(a)
    text = export.data("csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["group", "n", "survival_30"]  # a life table (disclosure): no events column
    assert any("Counts of 1 to 10 people are shown as" in " ".join(r) for r in rows)
    assert any("Data cutoff" in " ".join(r) for r in rows)
    book = load_workbook(io.BytesIO(export.data("xlsx")))
    about = " ".join(str(c.value) for row in book["About"].iter_rows() for c in row if c.value)
    assert "Counts of 1 to 10" in about and "n = 800 participants" in about
    assert export.filename("xlsx").startswith("staying-in-the-program") and export.filename("csv").endswith(".csv")
    with pytest.raises(ValueError, match="unknown export format"):
        export.data("gif")


def test_risk_table_hides_small_events(sample):  # noqa: F811
    """Westfield's events before day 90 are fewer than 11: "<11" under the curve, and the
    censored count beside it is hidden too (at risk + events + censored = n): on the sample
    it is under 11 itself (10), so shown as "<11" rather than as a complement."""
    a = analyse(sample, "retention", by="site")
    safe, _ = exports.protect_survival(a)
    west = safe.risk[safe.risk.group == "Westfield"].set_index("time")
    assert west.loc[90, "events"] == "<11" and west.loc[90, "censored"] == "<11"
    raw = a.risk[a.risk.group == "Westfield"].set_index("time")
    assert 0 < raw.loc[90, "events"] < 11 and 0 < raw.loc[90, "censored"] < 11


def test_a_refused_export_still_gives_a_file_that_says_why():
    text = exports.refusal("csv", "Retention", "Nothing to export: fewer than 11 participants").decode("utf-8-sig")
    assert "fewer than 11 participants" in text
    book = load_workbook(io.BytesIO(exports.refusal("xlsx", "Retention", "Nothing to export")))
    assert book.worksheets[0]["A2"].value == "Nothing to export"
