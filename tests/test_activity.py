"""Engagement page: attendance, weekday pattern, adherence, caseloads and the outreach list,
on the hand-made records of tests/director_data.py, worked out by hand, then checks on the committed sample."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics.analyses import activity
from analytics.charts import director as director_charts
from analytics.analyses import kpis
from analytics.analyses.outreach import LIST_COLUMNS, outreach
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period, default_period
from analytics.store.connection import Store

from director_data import ATTENDANCE, CHECKINS, CUR, D, EVIL, MENTORING, PARTICIPANTS, PREV, hand, sample  # noqa: F401



# --- attendance ---------------------------------------------------------------------

def test_attendance_by_week(hand: Store):
    a = activity.attendance_over_time(hand, Filters(), CUR)
    got = [(r.bucket, r.meeting_type, r.modality, r.meetings, r.participants) for r in a.itertuples()]
    assert got == [
        (D(2025, 6, 2), "aa", "in_person", 1, 1),
        (D(2025, 6, 2), "na", "online", 1, 1),
        (D(2025, 6, 2), "peer_group", "in_person", 1, 1),
        (D(2025, 6, 9), "aa", "in_person", 1, 1),
        (D(2025, 6, 9), "smart", "in_person", 1, 1),
        (D(2025, 6, 23), "aa", "online", 1, 1),
    ]
    assert not a.partial.any()
    # B1's meeting after their exit (05-10) is not counted, as in the Overview
    assert activity.attendance_over_time(hand, Filters(), PREV).meetings.sum() == 3


def test_attendance_by_month(hand: Store):
    a = activity.attendance_over_time(hand, Filters(), CUR, freq="month")
    got = {(r.meeting_type, r.modality): (r.meetings, r.participants) for r in a.itertuples()}
    assert got == {("aa", "in_person"): (2, 1), ("aa", "online"): (1, 1), ("na", "online"): (1, 1),
                   ("peer_group", "in_person"): (1, 1), ("smart", "in_person"): (1, 1)}
    assert set(a.bucket) == {D(2025, 6, 1)} and a.partial.all()
    assert set(a.first_day) == {D(2025, 6, 2)} and set(a.last_day) == {D(2025, 6, 29)}
    with pytest.raises(ValueError, match="freq"):
        activity.attendance_over_time(hand, Filters(), CUR, freq="day; DROP TABLE x")


def test_weekday_pattern(hand: Store):
    w = activity.weekday_pattern(hand, Filters(), CUR)
    assert list(w.weekday) == [1, 2, 3, 4, 5, 6, 7]
    assert list(w.day_name) == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert list(w.days_in_period) == [4] * 7
    assert list(w.meetings) == [1, 4, 1, 0, 0, 0, 0]
    assert list(w.checkins) == [1, 3, 1, 1, 0, 0, 0]
    assert list(w.mentoring) == [1, 0, 2, 1, 0, 0, 0]
    assert w.meetings_per_day[1] == 1.0 and w.meetings_share[1] == pytest.approx(4 / 6)
    short = activity.weekday_pattern(hand, Filters(), Period(D(2025, 6, 3), D(2025, 6, 4)))
    assert list(short.weekday) == [2, 3] and list(short.meetings) == [2, 1]


# --- adherence ----------------------------------------------------------------------

def test_adherence_by_participant(hand: Store):
    a = activity.adherence_by_participant(hand, Filters(), CUR)
    got = {r.participant_id: (r.weeks, r.weeks_with_checkin, r.band) for r in a.itertuples()}
    assert got == {"A1": (4, 2, "50-74%"), "A3": (2, 2, "100%"), "B2": (2, 1, "50-74%"),
                   "B3": (1, 0, "0%"), "C1": (4, 1, "25-49%")}
    d = activity.adherence_distribution(hand, Filters(), CUR)
    assert list(d.band) == list(activity.ADHERENCE_BANDS)
    assert list(d.participants) == [1, 0, 1, 2, 0, 1]
    assert d.share.sum() == pytest.approx(1.0) and d.share[3] == pytest.approx(0.4)


# --- caseloads ----------------------------------------------------------------------

def test_mentor_caseloads(hand: Store):
    c = activity.mentor_caseloads(hand, Filters(), CUR)
    months = 28 / (365.25 / 12)
    assert list(c.mentor_id) == ["M1", "M2"]
    m1, m2 = c.iloc[0], c.iloc[1]
    assert (m1.active_mentees, m1.sessions, m1.programs, m1.sites) == (2, 3, "A", "N1")  # A1 x2, A3
    assert m1.sessions_per_mentee_per_month == pytest.approx(1.5 / months)
    assert (m2.active_mentees, m2.sessions) == (1, 1)
    assert m2.sessions_per_mentee_per_month == pytest.approx(1 / months)
    b = activity.mentor_caseloads(hand, Filters(programs=("B",)), CUR)
    assert list(b.mentor_id) == ["M2"]  # M1's B mentee (B3) met in May only
    prev = activity.mentor_caseloads(hand, Filters(), PREV)
    assert prev[["mentor_id", "active_mentees", "sessions"]].values.tolist() == [["M1", 1, 1]]


# --- outreach (analytics.analyses.outreach) -------------------------------------------

def test_outreach_list_by_hand(hand: Store):
    """Nine participants: far too few leavings for a model, so ranked by days since contact."""
    o = outreach(hand, Filters())  # as of the cutoff, 2025-09-30
    assert o.model.kind == "days_silent" and o.participants.risk_28d.isna().all()
    # exits recorded (A3, B1, B3) are never listed; A2, D2, B2, D1 have been silent 30+ days (left)
    assert list(o.participants.participant_id) == ["C1", "A1"] and o.silent_no_exit == 4
    early = outreach(hand, Filters(), as_of=D(2025, 8, 25)).participants.set_index("participant_id")
    # D1 enrolled 08-15 with no contact since (10 days); C1 and D2 last seen 08-20 (5 days; ties by id)
    assert list(early.index) == ["D1", "C1", "D2"]
    assert early.loc["D1", "last_contact"] == D(2025, 8, 15) and early.loc["D1", "days_since_contact"] == 10
    # D2 on 08-20: a SMART meeting online (counted as online) and a check-in reporting use
    d2 = early.loc["D2"]
    assert (d2.in_person_4w, d2.online_4w, d2.checkins_4w, d2.mentoring_4w, d2.used_last_checkin) == (0, 1, 1, 0, True)
    assert early.loc["D1", "reasons"] == ["no contact for 10 days"]


# --- empty selections and hostile filter values ----------------------------------------

@pytest.mark.parametrize("filters", [Filters(programs=("nope",)), Filters(programs=(EVIL,)),
                                     Filters(sites=(EVIL,))])
def test_empty_selection(hand: Store, filters: Filters):
    assert activity.attendance_over_time(hand, filters, CUR).empty
    w = activity.weekday_pattern(hand, filters, CUR)
    assert len(w) == 7 and w[["meetings", "checkins", "mentoring"]].to_numpy().sum() == 0
    assert activity.adherence_by_participant(hand, filters, CUR).empty
    d = activity.adherence_distribution(hand, filters, CUR)
    assert list(d.participants) == [0] * 6 and d.share.isna().all()
    assert activity.mentor_caseloads(hand, filters, CUR).empty
    o = outreach(hand, filters).participants
    assert o.empty and list(o.columns) == list(LIST_COLUMNS)
    # figures say so instead of failing
    for fig in (director_charts.attendance_figure(activity.attendance_over_time(hand, filters, CUR), CUR, filters),
                director_charts.adherence_figure(d, CUR, filters),
                director_charts.caseload_figure(activity.mentor_caseloads(hand, filters, CUR), CUR, filters),
                director_charts.weekday_figure(w, CUR, filters)):
        assert any(a.name == "message" for a in fig.layout.annotations)
    assert hand.scalar("SELECT count(*) FROM participants") == 9


# --- figures ------------------------------------------------------------------------

def test_figures_use_our_template_and_carry_notes(hand: Store):
    figs = [
        director_charts.weekly_trends_figure(kpis.weekly_trends(hand, Filters(), CUR), CUR),
        director_charts.attendance_figure(activity.attendance_over_time(hand, Filters(), CUR), CUR),
        director_charts.attendance_figure(activity.attendance_over_time(hand, Filters(), CUR, "month"), CUR,
                                          by="modality", freq="month"),
        director_charts.weekday_figure(activity.weekday_pattern(hand, Filters(), CUR), CUR),
        director_charts.adherence_figure(activity.adherence_distribution(hand, Filters(), CUR), CUR),
        director_charts.caseload_figure(activity.mentor_caseloads(hand, Filters(), CUR), CUR),
    ]
    for fig in figs:
        assert fig.layout.template.layout.font.family  # the "outcomes" template, set explicitly
        notes = [a.text.replace("<br>", " ") for a in fig.layout.annotations if a.name == "note"]
        assert notes and "2025-06-02 to 2025-06-29" in notes[0]
        assert len(fig.data) >= 1
    assert "n=5 participants" in [a.text.replace("<br>", " ") for a in figs[4].layout.annotations
                                  if a.name == "note"][0]


# --- the committed sample -------------------------------------------------------------

def test_sample_caseloads_and_adherence(sample: Store):
    period = default_period(sample, 91)
    c = activity.mentor_caseloads(sample, Filters(), period)
    assert len(c) > 10 and c.active_mentees.is_monotonic_decreasing
    mentored = sample.scalar("""SELECT count(DISTINCT participant_id) FROM mentoring
                                WHERE met_on BETWEEN $a AND $b""", {"a": period.start, "b": period.end})
    assert c.active_mentees.sum() >= mentored  # a participant may see two mentors
    d = activity.adherence_distribution(sample, Filters(), period)
    per = activity.adherence_by_participant(sample, Filters(), period)
    assert d.participants.sum() == len(per) > 50
    assert math.isclose(d.share.sum(), 1.0)
