"""Engagement (program directors): attendance, weekday pattern, check-in adherence, mentor
caseloads, and the outreach list of participants with no recent contact."""

import pandas as pd
import streamlit as st

from analytics.access import roles as access
from analytics.analyses import activity, outreach
from analytics.access import audit
from analytics.publish import page_exports
from analytics.charts.outreach import calibration_figure
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


filters = sidebar_filters()
st.title("Engagement")

# The reporting period (same key as the Overview page, so the choice carries over in the URL).
default = cached(default_period)
picked = st.date_input(
    "Reporting period", value=(default.start, default.end), max_value=default.end, key="period",
    bind="query-params", format="YYYY-MM-DD", width=320,
    help=f"Both days included. Default: the {default.days} days up to the last date in the data ({default.end}). "
         "The outreach list at the bottom always looks from the last date in the data.")
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
    downloads("Check-in adherence", lambda: page_exports.adherence_export(
        cached(activity.adherence_distribution, filters, period, keyed=True), period, filters, default.end),
              key="adherence", filters=filters)

# --- mentor caseloads -----------------------------------------------------------------
st.subheader("How large are mentor caseloads?")
with st.spinner("Counting mentor caseloads..."):
    caseloads = cached(activity.mentor_caseloads, filters, period)
if caseloads.empty:
    st.info("No mentoring sessions in this period for participants matching the filters.")
else:
    st.plotly_chart(caseload_figure(caseloads, period, filters), theme=None, key="caseloads")
    downloads("Mentor caseloads", lambda: page_exports.caseload_export(
        cached(activity.mentor_caseloads, filters, period, keyed=True), period, filters, default.end),
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
with st.spinner("Learning from the program's history who tends to leave, and checking the track record..."):
    result = cached(outreach.outreach, filters, as_of=as_of)
st.caption(f"As of **{as_of}** (the last date in the data); {filters.describe()}. {result.rule} "
           "IDs are pseudonymous: look them up in your own records.")
if result.model.kind == "days_silent":
    st.warning(f"Not enough history to learn from ({result.model.events} leavings): the list is ranked by days "
               "since the last contact alone, longest silent first, with no estimated chance.")
ranked = result.participants
top = st.number_input("Show the top N", min_value=1, max_value=max(1, len(ranked)), value=min(50, max(1, len(ranked))),
                      step=10, key="outreach_top", bind="query-params",
                      help="Highest estimated risk first; the download holds the rows shown.")
shown = ranked.head(int(top)).assign(reasons=lambda f: ["; ".join(r) for r in f.reasons])


def audited_outreach_csv(frame, user_name: str) -> bytes:
    """The list as CSV, recorded in the audit log (participant-level data leaving the app)."""
    data = outreach.outreach_csv(frame)
    audit.record(store, "export", f"outreach-{as_of}.csv", user=user_name, participants=len(frame),
                 top=int(top), filters=filters)
    return data


if ranked.empty:
    st.info("No active participant matches the filters.")
else:
    log_view(user, "outreach list", top=int(top), filters=filters)
    st.metric("Active participants, ranked", f"{len(ranked):,}")
    st.dataframe(
        shown, hide_index=True, width="stretch", key="outreach_table", placeholder="—",
        column_order=["rank", "participant_id", "risk_28d", "reasons", "days_since_contact", "last_contact",
                      "in_person_4w", "online_4w", "checkins_4w", "mentoring_4w", "used_last_checkin", "program",
                      "site"],
        column_config={
            "rank": "Rank", "participant_id": "Participant", "program": "Program", "site": "Site",
            "risk_28d": st.column_config.ProgressColumn(f"Chance of leaving in {result.horizon} days",
                                                        format="percent", min_value=0, max_value=1),
            "reasons": st.column_config.TextColumn("What raises it most", width="large"),
            "last_contact": st.column_config.DateColumn("Last contact", format="YYYY-MM-DD"),
            "days_since_contact": "Days since", "in_person_4w": "In-person groups (4 wk)",
            "online_4w": "Online (4 wk)", "checkins_4w": "Check-ins (4 wk)", "mentoring_4w": "Mentoring (4 wk)",
            "used_last_checkin": "Use at last check-in"})
    st.download_button("Download outreach list (CSV)", data=lambda: audited_outreach_csv(ranked.head(int(top)), user.name),
                       file_name=f"outreach-{as_of}.csv", mime="text/csv", key="outreach_download",
                       on_click="ignore", icon=":material/download:",
                       help="The rows shown, with the chance and the reasons. For the program's own outreach "
                            "only: not for release.")
if result.silent_no_exit:
    st.caption(f"Not in the list: {result.silent_no_exit:,} participants without contact for "
               f"{result.inactivity_days} days or more and no recorded exit. By the retention definition they "
               "have left; record their exits.")

with st.expander("Track record: how well has this ranking done?"):
    b = result.backtest
    if not b.cutoffs:
        st.info("Not enough history for a track record yet.")
    else:
        st.caption(f"At {len(b.cutoffs)} past cutoffs, every {result.horizon} days from {b.cutoffs[0]} to "
                   f"{b.cutoffs[-1]}, the model was refitted on what was known then, the participants active then "
                   f"were ranked, and the ranking was compared with who left in the next {result.horizon} days. "
                   "Beside it: the plain ranking by days since the last contact (longest silent first). AUC: the "
                   "chance that someone who left was ranked above someone who stayed (0.5 = a coin toss); 95% CI "
                   "(DeLong, allowing for the same person at several cutoffs).")
        cols = st.columns(3)
        for col, (name, r) in zip(cols, (("Model", b.model), ("Longest silent first", b.days_silent))):
            if r.auc is None:
                col.metric(f"{name}: AUC", "—")
            else:
                col.metric(f"{name}: AUC", f"{r.auc.estimate:.3f}",
                           help=f"95% CI {r.auc.ci[0]:.3f} to {r.auc.ci[1]:.3f}")
                col.caption(f"95% CI {r.auc.ci[0]:.3f}-{r.auc.ci[1]:.3f}; of the top 20 flagged, "
                            f"{r.top20_left:.1f} left on average")
        if b.difference is not None:
            d = b.difference
            cols[2].metric("Model minus silent: AUC", f"{d.estimate:+.3f}")
            cols[2].caption(f"95% CI {d.ci[0]:+.3f} to {d.ci[1]:+.3f}"
                            + (": no better than days silent alone" if d.ci[0] <= 0 else ": better than days silent"))
        st.plotly_chart(calibration_figure(result), theme=None, key="calibration")
        st.dataframe(b.per_cutoff, hide_index=True, width="stretch", key="backtest_table", column_config={
            "cutoff": st.column_config.DateColumn("Cutoff", format="YYYY-MM-DD"), "active": "Active",
            "left": f"Left in {result.horizon} days", "events_in_fit": "Leavings learned from",
            "model_top20_left": "Model: of top 20, left", "days_silent_top20_left": "Silent: of top 20, left"})
    if result.model.terms:
        st.markdown(f"**The model today** ({result.model.events:,} leavings learned from): hazard ratios with "
                    "95% CI, each adjusted for the others.")
        st.dataframe(pd.DataFrame([{"term": t.term, "hazard ratio": t.estimate, "CI from": t.ci[0], "CI to": t.ci[1],
                                    "p": t.p, "per": t.unit} for t in result.model.terms]),
                     hide_index=True, width="stretch", key="outreach_terms",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("hazard ratio", "CI from", "CI to")} | {
                         "p": st.column_config.NumberColumn(format="%.3g")})
