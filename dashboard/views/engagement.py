"""Engagement (program directors): attendance, weekday pattern, check-in adherence, mentor
caseloads, and the outreach list of participants with no recent contact."""

import streamlit as st

from analytics.access import roles as access
from analytics.analyses import activity
from analytics.access import audit
from analytics.publish import page_exports
from analytics.charts.director import (
    adherence_figure,
    attendance_figure,
    caseload_figure,
    weekday_figure,
)
from analytics.outcomes.period import Period, default_period
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from dashboard.auth import guard, log_view
from dashboard.common import cached, downloads, get_store, sidebar_filters

user = guard(access.PARTICIPANT_LEVEL)
store = get_store()


def audited_outreach_csv(frame, user_name: str) -> bytes:
    """The list as CSV, recorded in the audit log (participant-level data leaving the app)."""
    data = page_exports.outreach_csv(frame)
    audit.record(store, "export", f"outreach-{as_of}.csv", user=user_name, participants=len(frame),
                 days=int(days), filters=filters)
    return data


filters = sidebar_filters()
st.title("Engagement")

# The reporting period (same key as the Overview page, so the choice carries over in the URL).
default = cached(default_period)
picked = st.date_input(
    "Reporting period", value=(default.start, default.end), max_value=default.end, key="period",
    bind="query-params", format="YYYY-MM-DD", width=320,
    help=f"Both days included. Default: the {default.days} days up to the last date in the data ({default.end}). "
         "The outreach list at the bottom always looks back from the last date in the data.")
if len(picked) != 2:
    st.info("Pick the last day of the reporting period too.")
    st.stop()
period = Period(*picked)
st.caption(f"**{period.describe()}**; {filters.describe()}.")

# --- meetings attended --------------------------------------------------------------
st.subheader("Is attendance growing?")
left, right = st.columns(2)
split = left.segmented_control(
    "Split by", ["meeting_type", "modality"], default="meeting_type", required=True, key="split",
    bind="query-params", format_func={"meeting_type": "Meeting type", "modality": "Modality"}.get)
freq = right.segmented_control(
    "Count per", list(activity.FREQUENCIES), default="week", required=True, key="freq",
    bind="query-params", format_func=str.capitalize)
with st.spinner("Counting meetings attended..."):
    attendance = cached(activity.attendance_over_time, filters, period, freq)
if attendance.empty:
    st.info("No meetings attended in this period by participants matching the filters.")
else:
    st.plotly_chart(attendance_figure(attendance, period, filters, by=split, freq=freq), theme=None,
                    key="attendance")
    downloads(f"Meetings attended per {freq}",
              lambda: page_exports.attendance_export(attendance, period, filters, default.end, by=split, freq=freq),
              key="attendance", filters=filters)

# --- weekday pattern ------------------------------------------------------------------
st.subheader("When do participants engage?")
with st.spinner("Counting activity by day of the week..."):
    weekday = cached(activity.weekday_pattern, filters, period)
if not weekday[["meetings", "checkins", "mentoring"]].to_numpy().any():
    st.info("No meetings, check-ins or mentoring sessions in this period for participants matching the filters.")
else:
    st.plotly_chart(weekday_figure(weekday, period, filters), theme=None, key="weekday")
    downloads("Activity by day of the week", lambda: page_exports.weekday_export(weekday, period, filters, default.end),
              key="weekday", filters=filters)

# --- check-in adherence ---------------------------------------------------------------
st.subheader("Who keeps checking in?")
with st.spinner("Working out check-in adherence..."):
    adherence = cached(activity.adherence_distribution, filters, period)
if not adherence.participants.any():
    st.info("No adherence to show: "
            + ("no active participant matching the filters has a whole Monday-Sunday week in this period."
               if period.full_weeks() else
               "this period has no whole Monday-Sunday week. Pick a period of at least one whole week."))
else:
    st.plotly_chart(adherence_figure(adherence, period, filters), theme=None, key="adherence")
    downloads("Check-in adherence", lambda: page_exports.adherence_export(adherence, period, filters, default.end),
              key="adherence", filters=filters)

# --- mentor caseloads -----------------------------------------------------------------
st.subheader("How large are mentor caseloads?")
with st.spinner("Counting mentor caseloads..."):
    caseloads = cached(activity.mentor_caseloads, filters, period)
if caseloads.empty:
    st.info("No mentoring sessions in this period for participants matching the filters.")
else:
    st.plotly_chart(caseload_figure(caseloads, period, filters), theme=None, key="caseloads")
    downloads("Mentor caseloads", lambda: page_exports.caseload_export(caseloads, period, filters, default.end),
              key="caseloads", filters=filters)
    with st.expander(f"Caseload per mentor ({len(caseloads):,} mentors)"):
        st.dataframe(caseloads, hide_index=True, width="stretch", key="caseload_table", column_config={
            "mentor_id": "Mentor", "active_mentees": "Active mentees", "sessions": "Sessions",
            "sessions_per_mentee": st.column_config.NumberColumn("Sessions per mentee", format="%.1f"),
            "sessions_per_mentee_per_month": st.column_config.NumberColumn("Per mentee per month",
                                                                           format="%.1f"),
            "programs": "Programs", "sites": "Sites"})
        st.caption(activity.DEFINITIONS["caseload"])

# --- outreach list --------------------------------------------------------------------
st.subheader("Who is slipping away? The outreach list")
as_of = cached(resolve_cutoff, OutcomeSettings())
left, right = st.columns(2)
days = left.number_input("No contact for at least N days", min_value=0, max_value=3650, value=14, step=1,
                         key="no_contact_days", bind="query-params",
                         help="Lists participants whose last meeting, check-in or mentoring session (or their "
                              "enrollment, if they never had one) is at least this many days before "
                              f"{as_of}, the last date in the data.")
most = right.number_input("and at most M days", min_value=int(days), max_value=3650, value=max(90, int(days)),
                          step=1, key="max_contact_days", bind="query-params",
                          help="People silent for longer have, by the retention definition, already left: "
                               "they are counted below the list, not ranked in it.")
with st.spinner("Finding participants with no recent contact..."):
    outreach = cached(activity.outreach_list, filters, int(days), as_of=as_of, max_days=int(most))
    lost = cached(activity.outreach_list, filters, int(most) + 1, as_of=as_of)
st.caption(f"As of **{as_of}** (the last date in the data); {filters.describe()}. "
           f"{activity.DEFINITIONS['outreach']} Highest risk first: the risk score (0-100) adds points for little "
           "engagement in those 4 weeks (up to 60), for a long silence (up to 25, full at 90 days) and for "
           "reported substance use (15). IDs are pseudonymous: look them up in your own records.")
if outreach.empty:
    st.info(f"No participant matching the filters has gone {int(days)} to {int(most)} days without contact.")
else:
    log_view(user, "outreach list", days=int(days), filters=filters)
    st.metric("Participants to reach out to", f"{len(outreach):,}")
    st.dataframe(
        outreach, hide_index=True, width="stretch", key="outreach_table", placeholder="—",
        column_order=["rank", "participant_id", "risk_score", "days_since_contact", "last_contact",
                      "last_contact_type", "meetings_4w", "checkins_4w", "mentoring_4w", "used_4w",
                      "program", "site"],
        column_config={
            "rank": "Rank", "participant_id": "Participant", "program": "Program", "site": "Site",
            "last_contact": st.column_config.DateColumn("Last contact", format="YYYY-MM-DD"),
            "days_since_contact": "Days since", "last_contact_type": "Last contact was",
            "meetings_4w": "Meetings (4 wk)", "checkins_4w": "Check-ins (4 wk)",
            "mentoring_4w": "Mentoring (4 wk)", "used_4w": "Reported use (4 wk)",
            "risk_score": st.column_config.ProgressColumn("Risk score", format="%.1f", min_value=0,
                                                          max_value=100)})
    st.download_button("Download outreach list (CSV)", data=lambda: audited_outreach_csv(outreach, user.name),
                       file_name=f"outreach-{as_of}.csv", mime="text/csv", key="outreach_download",
                       on_click="ignore", icon=":material/download:",
                       help="All columns, including the parts of the risk score. For the program's own "
                            "outreach only: not for release.")
if not lost.empty:
    st.caption(f"Not in the list: {len(lost):,} participants without contact for more than {int(most)} days and "
               "no recorded exit. By the retention definition they have left; record their exits, or raise M "
               "to include them.")
