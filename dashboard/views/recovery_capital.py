"""Recovery capital (clinicians, directors): BARC-10 at baseline, paired change, trajectories,
follow-up compliance against the 80% target, and the audited due-soon list (staff only)."""

import streamlit as st

from analytics.access import roles as access
from analytics.analyses import assessments
from analytics.charts.assessments import baseline_figure, change_figure, compliance_figure, trajectory_figure
from analytics.outcomes.assessments import AssessmentSettings
from dashboard.auth import guard, log_view
from dashboard.common import cached, get_store, sidebar_filters

user = guard(access.ANALYTICS)
store = get_store()
filters = sidebar_filters()
settings = AssessmentSettings()
st.title("Recovery capital")
st.caption("BARC-10 (Brief Assessment of Recovery Capital): ten items 1-6, total 10-60; 47 or more went with "
           "sustained remission. Follow-ups after SAMHSA's SUPRT schedule: baseline within 30 days of "
           "enrollment, follow-up 180 days after it, then yearly, each within +/- 30 days.")
try:
    with st.spinner("Scheduling follow-ups and fitting the models..."):
        r = cached(assessments.analyse_assessments, filters, settings)
except assessments.NoAssessments as exc:
    st.info(f"Nothing to show: {exc}.")
    st.stop()

c = r.change
cols = st.columns(4)
cols[0].metric("With a baseline", f"{r.baseline_n:,}")
cols[1].metric("Follow-up rate", f"{r.rate:.0%}" if r.due else "-", help=f"{r.done:,} done of {r.due:,} due; "
               f"target {settings.target_rate:.0%}")
cols[2].metric("Mean change at 6 months", f"{c.mean:+.1f}" if c.n else "-",
               help=f"n={c.n:,}; 95% CI {c.ci[0]:.1f} to {c.ci[1]:.1f}" if c.n > 1 else None)
cols[3].metric("Growth per month (mixed model)", f"{r.growth.slope:+.2f}" if r.growth else "-")
for w in r.warnings:
    st.warning(w)

st.subheader("Where do people start?")
st.plotly_chart(baseline_figure(r.baselines, settings.threshold_total, r.note()), theme=None, key="baseline")

st.subheader("Change from baseline to 6 months")
st.write(f"n = {c.n:,} with both; mean change {c.mean:+.2f} (95% CI {c.ci[0]:+.2f} to {c.ci[1]:+.2f}), "
         f"paired t p = {c.p_t:.2g}, Wilcoxon p = {c.p_wilcoxon:.2g}; at or above {settings.threshold_total}: "
         f"{c.share_baseline:.0%} at baseline, {c.share_followup:.0%} at follow-up (McNemar p = {c.p_mcnemar:.2g})."
         if c.n > 1 else "Too few people with both assessments yet.")
st.plotly_chart(change_figure(r.pairs, r.note()), theme=None, key="change")
if not r.engagement.empty:
    st.caption("Change against engagement between the two assessments (an association, not an effect: people "
               "who engage more differ in other ways too).")
    st.dataframe(r.engagement.round(3), hide_index=True, key="engagement_table")

st.subheader("Trajectories")
st.plotly_chart(trajectory_figure(r.trajectories, r.growth.intercept if r.growth else None,
                                  r.growth.slope if r.growth else None, r.note()), theme=None, key="trajectories")

st.subheader("Follow-up compliance")
by = st.segmented_control("Per", ["program", "site", "cohort_quarter"], default="program", required=True,
                          key="compliance_by", format_func={"program": "Program", "site": "Site",
                                                            "cohort_quarter": "Enrollment quarter"}.get)
frame = cached(assessments.schedule_frame_for, filters, settings)
table = assessments.compliance_table(frame, [by], settings.target_rate)
st.plotly_chart(compliance_figure(table, by, settings.target_rate, r.note()), theme=None, key="compliance")
st.dataframe(table, hide_index=True, key="compliance_table")

st.subheader("Due soon: who to reassess")
soon = cached(assessments.due_soon, filters, settings)
st.caption(f"Follow-ups not yet done whose window is open at {r.cutoff} or opens within "
           f"{settings.due_soon_days} days. IDs are pseudonymous; for the program's own use, not for release.")
if soon.empty:
    st.info("Nobody is due soon.")
else:
    log_view(user, "assessments due soon", filters=filters)
    st.dataframe(soon, hide_index=True, key="due_soon_table")
