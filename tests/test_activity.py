"""Engagement page: attendance, weekday pattern, adherence, caseloads and the outreach list,
on the hand-made records of tests/director_data.py, worked out by hand, then checks on the committed sample."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from analytics.analyses import activity
from analytics.charts import director as director_charts
from analytics.publish import page_exports
from analytics.analyses import kpis
from analytics.analyses.activity import RiskWeights
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


# --- outreach -----------------------------------------------------------------------

def score(m: int, c: int, s: int, days: int, used: bool) -> float:
    """The documented score, written out independently of the SQL."""
    engagement = 60 * 0.85 ** (m / 4) * 0.90 ** (c / 4) * 0.75 ** (s / 4)
    return round(engagement + 25 * min(days, 90) / 90 + (15 if used else 0), 1)


def test_outreach_list_by_hand(hand: Store):
    o = activity.outreach_list(hand, Filters(), 30)  # as of the cutoff, 2025-09-30
    assert list(o.columns) == list(activity.OUTREACH_COLUMNS)
    # exits recorded (A3, B1, B3) are never listed; A1 (0 days) and C1 (1 day) are in touch
    assert list(o.participant_id) == ["A2", "D2", "B2", "D1"]
    assert list(o["rank"]) == [1, 2, 3, 4]
    rows = {r.participant_id: r for r in o.itertuples()}
    a2, d2, b2, d1 = rows["A2"], rows["D2"], rows["B2"], rows["D1"]
    assert (a2.last_contact, a2.days_since_contact, a2.last_contact_type) == (D(2025, 5, 21), 132, "meeting")
    assert (d2.last_contact, d2.days_since_contact, d2.last_contact_type) == (D(2025, 8, 20), 41,
                                                                              "meeting + check-in")
    assert (b2.last_contact, b2.days_since_contact) == (D(2025, 7, 10), 82)
    assert (d1.last_contact, d1.days_since_contact, d1.last_contact_type) == (None, 46, "none since enrollment")
    # 4 weeks up to the last contact: B2 06-13..07-10 = meetings 06-24, 07-10; check-in 06-25; mentoring 06-16
    assert (b2.meetings_4w, b2.checkins_4w, b2.mentoring_4w, b2.used_4w) == (2, 1, 1, False)
    assert (d2.meetings_4w, d2.checkins_4w, d2.mentoring_4w, d2.used_4w) == (1, 1, 0, True)
    assert a2.risk_score == score(1, 0, 0, 132, False) == 82.6
    assert d2.risk_score == score(1, 1, 0, 41, True) == 82.5
    assert b2.risk_score == score(2, 1, 1, 82, False) == 72.9
    assert d1.risk_score == score(0, 0, 0, 46, False) == 72.8
    assert d1.engagement_points == 60.0 and d2.use_points == 15.0 and a2.silence_points == 25.0
    assert (o.engagement_points + o.silence_points + o.use_points).round(1).tolist() == \
        pytest.approx(o.risk_score.tolist(), abs=0.11)


def test_outreach_threshold_as_of_and_filters(hand: Store):
    assert list(activity.outreach_list(hand, Filters(), 45).participant_id) == ["A2", "B2", "D1"]
    assert set(activity.outreach_list(hand, Filters(), 0).participant_id) == {"A1", "A2", "B2", "C1", "D1", "D2"}
    # as of 2025-07-15 only what was known then counts: A1's last contact is 06-18 (27 days),
    # C1's 06-05 (40), A2's 05-21 (55); D1 was not enrolled yet; later activity is ignored
    early = activity.outreach_list(hand, Filters(), 30, as_of=D(2025, 7, 15))
    assert list(early.participant_id) == ["A2", "C1"]
    assert list(early.days_since_contact) == [55, 40]
    assert list(early.risk_score) == [score(1, 0, 0, 55, False), score(0, 1, 0, 40, False)]
    # an exit recorded after the reference day is not known yet on it
    assert "A3" in set(activity.outreach_list(hand, Filters(), 0, as_of=D(2025, 6, 15)).participant_id)
    assert list(activity.outreach_list(hand, Filters(programs=("B",)), 30).participant_id) == ["D2", "B2"]
    with pytest.raises(ValueError):
        activity.outreach_list(hand, Filters(), -1)
    # at most 90 days: A2 (132 days) has, by the retention definition, already left
    assert list(activity.outreach_list(hand, Filters(), 30, max_days=90).participant_id) == ["D2", "B2", "D1"]
    assert list(activity.outreach_list(hand, Filters(), 30, max_days=132).participant_id) == ["A2", "D2", "B2", "D1"]
    with pytest.raises(ValueError, match="max_days"):
        activity.outreach_list(hand, Filters(), 30, max_days=10)


def test_outreach_weights_are_a_setting(hand: Store):
    flat = RiskWeights(use_points=0.0)
    o = activity.outreach_list(hand, Filters(), 30, weights=flat)
    assert o.set_index("participant_id").loc["D2", "use_points"] == 0.0
    with pytest.raises(ValueError):
        RiskWeights(hr_meeting=1.5)


def test_outreach_csv(hand: Store):
    o = activity.outreach_list(hand, Filters(), 30)
    data = page_exports.outreach_csv(o)
    assert isinstance(data, bytes)
    text = data.decode("utf-8")
    assert text.splitlines()[0] == ",".join(activity.OUTREACH_COLUMNS)
    assert "1,A2,A,N1,2025-05-20,2025-05-21,132,meeting,1,0,0,False,82.6" in text
    back = pd.read_csv(io.BytesIO(data))
    assert list(back.participant_id) == list(o.participant_id) and len(back) == 4
    assert page_exports.outreach_csv(o.iloc[0:0]).decode().strip() == ",".join(activity.OUTREACH_COLUMNS)


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
    o = activity.outreach_list(hand, filters, 0)
    assert o.empty and list(o.columns) == list(activity.OUTREACH_COLUMNS)
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

def test_sample_outreach_is_sorted_and_consistent(sample: Store):
    o = activity.outreach_list(sample, Filters(), 14)
    assert len(o) > 10
    assert (o.days_since_contact >= 14).all()
    assert o.risk_score.is_monotonic_decreasing and list(o["rank"]) == list(range(1, len(o) + 1))
    assert o.risk_score.between(0, 100).all()
    exited = {r[0] for r in sample.rows("SELECT participant_id FROM participants WHERE exited_on IS NOT NULL")}
    assert not exited & set(o.participant_id)
    longer = activity.outreach_list(sample, Filters(), 60)
    assert set(longer.participant_id) < set(o.participant_id)
    program = o.program.iloc[0]
    only = activity.outreach_list(sample, Filters(programs=(program,)), 14)
    assert set(only.participant_id) == set(o.participant_id[o.program == program])


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
