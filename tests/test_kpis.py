"""Overview KPIs and weekly trends: hand-made records whose every number is worked out
below, then consistency checks on the committed sample."""

from __future__ import annotations


import pandas as pd
import pytest

from analytics.analyses import activity
from analytics.analyses import kpis
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period, default_period
from analytics.outcomes.definitions import OutcomeSettings, durations
from analytics.store.connection import Store
from analytics.stats.survival import kaplan_meier

from director_data import ATTENDANCE, CHECKINS, CUR, D, EVIL, MENTORING, PARTICIPANTS, PREV, hand, sample  # noqa: F401


# --- Period --------------------------------------------------------------------------

def test_period():
    assert CUR.days == 28 and CUR.previous() == PREV
    assert CUR.full_weeks() == [D(2025, 6, 2), D(2025, 6, 9), D(2025, 6, 16), D(2025, 6, 23)]
    odd = Period(D(2025, 6, 4), D(2025, 6, 21))  # Wednesday to Saturday
    assert odd.full_weeks() == [D(2025, 6, 9)]
    assert odd.weeks() == [D(2025, 6, 2), D(2025, 6, 9), D(2025, 6, 16)]
    assert odd.previous() == Period(D(2025, 5, 17), D(2025, 6, 3))
    assert Period.last_days(D(2025, 6, 29), 28) == CUR
    assert Period(D(2025, 6, 4), D(2025, 6, 6)).full_weeks() == []
    with pytest.raises(ValueError, match="after it ends"):
        Period(D(2025, 6, 2), D(2025, 6, 1))
    with pytest.raises(TypeError):
        Period("2025-06-01", D(2025, 6, 2))


# --- Overview on hand-made records ----------------------------------------------------

def values(ov: kpis.Overview) -> dict:
    return {k: (v.current, v.previous) for k, v in ov.kpis.items()}


def test_overview_by_hand(hand: Store):
    ov = kpis.overview(hand, Filters(), CUR)
    assert ov.previous_period == PREV and ov.cutoff == D(2025, 9, 30)
    got = values(ov)
    # current: A1, A3, B2, B3 (exit 06-10 is after the start), C1; A2 had nothing in June
    # previous: A1, A2, B3; B1 attended on 05-10 but had exited on 05-01: not active
    assert got["active"] == (5, 3)
    assert got["new_enrollments"] == (3, 2)  # A3, C1, B2 / A2, B3
    assert got["meetings"] == (6, 3)  # A1 3, A3, B2, B3 / A1 2, A2 (B1's after-exit meeting not counted)
    # weeks with a check-in / eligible weeks:
    # current A1 2/4, A3 2/2 (exits 06-20: not the week of 06-16), B2 1/2, B3 0/1, C1 1/4
    # previous A1 1/4, A2 0/1 (enrolled Tuesday 05-20: from the week of 05-26), B3 3/4
    assert got["adherence"] == (pytest.approx(6 / 13), pytest.approx(4 / 9))
    assert (ov.kpis["adherence"].current_n, ov.kpis["adherence"].previous_n) == (13, 9)
    assert got["mentoring_coverage"] == (pytest.approx(3 / 5), pytest.approx(1 / 3))
    # retention, cutoff 2025-09-30, inactivity 30 days:
    # 30 days: the period ended 06-29, before 09-30 - 60 days: its enrollees are all known.
    # current enrollees A3 (drop-out day 18), B2 (silent since 07-10: left day 24), C1 (in, 120 days)
    # KM (2/3)(1/2) = 1/3. previous enrollees A2 (silent since 05-21: left day 1), B3
    # (transferred day 36: censored): 1/2
    assert got["retention_30"] == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    r30, r90 = ov.kpis["retention_30"], ov.kpis["retention_90"]
    assert (r30.window, r30.previous_window) == (CUR, PREV)
    assert (r30.current_n, r30.current_of, r30.previous_n, r30.previous_of) == (3, 3, 2, 2)
    # 90 days: known only for enrollees up to 09-30 - 120 days = 06-02, so the 28 days to 06-02:
    # A2 (left day 1), A3 (day 18), C1 (in): KM (2/3)(1/2) = 1/3; before it (04-08 to 05-05)
    # only B3, censored on day 36: not known at day 90 -> None
    assert r90.window == Period(D(2025, 5, 6), D(2025, 6, 2))
    assert r90.previous_window == Period(D(2025, 4, 8), D(2025, 5, 5))
    assert got["retention_90"] == (pytest.approx(1 / 3), None)
    assert (r90.current_n, r90.current_of, r90.previous_n, r90.previous_of) == (3, 3, 1, 1)
    assert r30.change == pytest.approx(1 / 3 - 1 / 2) and r90.change is None
    assert ov.kpis["active"].change == 2 and ov.kpis["active"].relative_change == pytest.approx(2 / 3)
    assert ov.kpis["adherence"].relative_change is None


def test_overview_table_and_definitions(hand: Store):
    ov = kpis.overview(hand, Filters(), CUR)
    table = ov.table()
    assert list(table.kpi) == list(kpis.KPI_KEYS)
    assert table.set_index("kpi").loc["active", "current"] == 5
    assert all(isinstance(d, str) and len(d) > 40 for d in table.definition)
    assert "30 + 30 days" in ov.kpis["retention_30"].definition
    wide = kpis.overview(hand, Filters(), CUR, OutcomeSettings(inactivity_days=45))
    assert "30 + 45 days" in wide.kpis["retention_30"].definition


def test_filters_change_the_numbers(hand: Store):
    b = values(kpis.overview(hand, Filters(programs=("B",)), CUR))
    assert b["active"] == (2, 1)  # B2, B3 / B3 (B1 exited before the previous period)
    assert b["meetings"] == (2, 0)
    assert b["new_enrollments"] == (1, 1)
    assert b["adherence"] == (pytest.approx(1 / 3), pytest.approx(3 / 4))
    assert b["mentoring_coverage"] == (pytest.approx(1 / 2), pytest.approx(1.0))
    n1 = values(kpis.overview(hand, Filters(sites=("N1",)), CUR))
    assert n1["active"] == (3, 2) and n1["meetings"] == (4, 3)
    recent = values(kpis.overview(hand, Filters(enrolled_from=D(2025, 6, 1)), CUR))
    assert recent["active"] == (3, 0) and recent["new_enrollments"] == (3, 0)
    # the enrollment window narrows the retention cohorts too
    assert recent["retention_30"] == (pytest.approx(1 / 3), None)


@pytest.mark.parametrize("filters", [Filters(programs=("nope",)), Filters(programs=(EVIL,)),
                                     Filters(sites=(EVIL,)), Filters(enrolled_from=D(2030, 1, 1))])
def test_empty_selection_gives_zeros_not_a_crash(hand: Store, filters: Filters):
    ov = kpis.overview(hand, filters, CUR)
    got = values(ov)
    for key in ("active", "new_enrollments", "meetings"):
        assert got[key] == (0, 0)
    for key in ("adherence", "mentoring_coverage", "retention_30", "retention_90"):
        assert got[key] == (None, None)
    trends = kpis.weekly_trends(hand, filters, CUR)
    assert len(trends) == 4 and trends[list(kpis.TREND_COLUMNS)].to_numpy().sum() == 0
    assert hand.scalar("SELECT count(*) FROM participants") == 9  # nothing was dropped


def test_weekly_trends_by_hand(hand: Store):
    t = kpis.weekly_trends(hand, Filters(), CUR)
    assert list(t.week_start) == CUR.full_weeks()
    assert list(t.iso_week) == ["2025-W23", "2025-W24", "2025-W25", "2025-W26"]
    assert not t.partial.any() and list(t.days) == [7, 7, 7, 7]
    rows = t[list(kpis.TREND_COLUMNS)].values.tolist()
    assert rows == [
        [4, 3, 3, 0, 2],  # A1, A3, B3, C1; enrolled A3, C1
        [2, 2, 1, 2, 0],  # A1, A3
        [2, 0, 1, 2, 1],  # A1, B2; enrolled B2
        [1, 1, 1, 0, 0],  # B2
    ]
    assert t.meetings.sum() == kpis.overview(hand, Filters(), CUR).kpis["meetings"].current


def test_weekly_trends_partial_weeks(hand: Store):
    t = kpis.weekly_trends(hand, Filters(), Period(D(2025, 6, 4), D(2025, 6, 12)))
    assert list(t.week_start) == [D(2025, 6, 2), D(2025, 6, 9)]
    assert list(t.first_day) == [D(2025, 6, 4), D(2025, 6, 9)]
    assert list(t.last_day) == [D(2025, 6, 8), D(2025, 6, 12)]
    assert list(t.days) == [5, 4] and t.partial.all()
    assert t[list(kpis.TREND_COLUMNS)].values.tolist() == [[2, 1, 1, 0, 0], [2, 2, 1, 2, 0]]


def test_weekly_trends_skip_activity_after_an_exit(hand: Store):
    t = kpis.weekly_trends(hand, Filters(), PREV)
    first = t.iloc[0]  # week of 05-05: A1 (meeting, check-in), B3 (check-in); B1 had exited
    assert (first.active, first.meetings, first.checkins) == (2, 1, 2)
    assert t.meetings.sum() == 3


# --- the committed sample: consistency between functions --------------------------------

def test_sample_numbers_agree(sample: Store):
    period = default_period(sample, 84)
    ov = kpis.overview(sample, Filters(), period)
    assert ov.kpis["active"].current > 100
    trends = kpis.weekly_trends(sample, Filters(), period)
    att = activity.attendance_over_time(sample, Filters(), period)
    assert trends.meetings.sum() == att.meetings.sum() == ov.kpis["meetings"].current
    assert trends.new_enrollments.sum() == ov.kpis["new_enrollments"].current
    per = activity.adherence_by_participant(sample, Filters(), period)
    assert per.weeks_with_checkin.sum() / per.weeks.sum() == pytest.approx(ov.kpis["adherence"].current)
    # every participant has one program: per-program counts add up
    programs = [r[0] for r in sample.rows("SELECT DISTINCT program FROM participants")]
    parts = [kpis.overview(sample, Filters(programs=(p,)), period) for p in programs]
    for key in ("active", "meetings", "new_enrollments"):
        assert sum(o.kpis[key].current for o in parts) == ov.kpis[key].current
    assert all(o.kpis["active"].current < ov.kpis["active"].current for o in parts)


def test_sample_retention_matches_durations_and_km(sample: Store):
    """The KPI equals KM of analytics.stats.survival on analytics.outcomes.definitions.durations, over the
    participants enrolled in the period and long enough before the cutoff."""
    period = Period(D(2026, 1, 1), D(2026, 3, 31))
    ov = kpis.overview(sample, Filters(), period)
    d = durations(sample, "retention", OutcomeSettings()).frame
    enrolled = pd.to_datetime(d.enrolled_on).dt.date
    in_period = d[(enrolled >= period.start) & (enrolled <= period.end)]
    for t in (30, 90):
        assert ov.kpis[f"retention_{t}"].window == period  # long enough ago
        known = in_period[(pd.Timestamp(ov.cutoff) - pd.to_datetime(in_period.enrolled_on)).dt.days >= t + 30]
        km = kaplan_meier(known.days.to_numpy(), known.event.to_numpy())
        kpi = ov.kpis[f"retention_{t}"]
        assert kpi.current == pytest.approx(km.at(t))
        assert kpi.current_n == len(known) and kpi.current_of == len(in_period)


def test_recent_period_takes_the_latest_known_cohort(sample: Store):
    """For the default (latest) period, retention comes from the latest enrollment window
    whose day t is known, and equals KM over exactly those enrollees."""
    period = default_period(sample, 28)
    ov = kpis.overview(sample, Filters(), period)
    d = durations(sample, "retention", OutcomeSettings()).frame
    enrolled = pd.to_datetime(d.enrolled_on).dt.date
    for t in (30, 90):
        k = ov.kpis[f"retention_{t}"]
        assert k.window == Period.last_days(ov.cutoff - pd.Timedelta(days=t + 30).to_pytimedelta(), 28)
        cohort = d[(enrolled >= k.window.start) & (enrolled <= k.window.end)]
        assert k.current == pytest.approx(kaplan_meier(cohort.days.to_numpy(), cohort.event.to_numpy()).at(t))
        assert k.current_n == k.current_of == len(cohort) > 20


def test_default_period(sample: Store):
    p = default_period(sample, 28)
    assert p.end == D(2026, 9, 30) and p.days == 28


# --- Data page (analytics.analyses.quality) on the same records ----------------------------------

def test_quality_by_hand(hand: Store):
    from analytics.analyses import quality

    m = quality.missing_values(hand).set_index(["table", "column"])
    assert (m.loc[("checkins", "craving"), "rows"], m.loc[("checkins", "craving"), "missing"]) == (14, 7)
    assert m.loc[("checkins", "mood"), "missing"] == 6
    assert m.loc[("participants", "exited_on"), "share_missing"] == pytest.approx(6 / 9)
    assert m.loc[("mentoring", "minutes"), "share_missing"] == 1.0
    assert m.loc[("attendance", "participant_id"), "missing"] == 0
    assert quality.missing_values(hand, Filters(programs=("B",))).set_index(["table", "column"]).loc[
        ("checkins", "craving"), "rows"] == 5  # B2, B3 x3, D2
    assert list(quality.participants_without_checkins(hand).participant_id) == ["A2", "D1", "B1"]
    cov = quality.checkin_coverage(hand).set_index("program")
    assert cov.loc["A"].tolist() == [5, 2, pytest.approx(2 / 5)]
    assert cov.loc["B"].tolist() == [4, 1, pytest.approx(1 / 4)]
    last = quality.last_activity_by_program(hand).set_index("program")
    assert last.loc["A", "last_attendance"] == D(2025, 6, 10) and last.loc["A", "days_behind"] == 0
    assert last.loc["B", "last_activity"] == D(2025, 8, 20) and last.loc["B", "days_behind"] == 41
    assert last.loc["B", "last_mentoring"] == D(2025, 6, 16)
    assert len(quality.import_history(hand)) == 4
    for f in (Filters(programs=(EVIL,)), Filters(sites=("nope",))):
        assert quality.participants_without_checkins(hand, f).empty
        assert quality.checkin_coverage(hand, f).empty and quality.last_activity_by_program(hand, f).empty
        assert (quality.missing_values(hand, f).rows == 0).all()
