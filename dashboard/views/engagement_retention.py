"""Engagement and retention: does coming to meetings, checking in and mentoring go with staying?"""

import streamlit as st

from analytics.access import roles as access
from analytics.charts import engagement as engagement_charts
from analytics.publish import page_exports
from analytics.analyses.engagement import EXPLANATION, analyse_engagement
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.analyses.survival import NoData
from dashboard.auth import guard
from analytics.store.queries.disclosure import cell_key_secret
from dashboard.common import cached, downloads, get_store, sidebar_filters

user = guard(access.ANALYTICS)
filters = sidebar_filters()
st.title("Engagement and retention")
st.caption("Does engagement go with staying in the program, and with staying sober? "
           "Associations are not proof of cause.")
left, right = st.columns(2)
outcome = left.segmented_control("Outcome", ["retention", "sobriety"], default="retention", key="eng_outcome",
                                 bind="query-params") or "retention"
day = right.segmented_control("Landmark day", [30, 60, 90], default=30, key="landmark", bind="query-params") or 30

try:
    with st.status("Fitting the time-varying, landmark and repeated-measures models...", expanded=False) as status:
        analysis = cached(analyse_engagement, outcome, filters=filters)
        status.update(label="Models fitted", state="complete")
except NoData as exc:
    st.warning(f"Nothing to show: {exc}. Widen the filters in the sidebar.")
    st.stop()

cutoff = cached(resolve_cutoff, OutcomeSettings())  # the data cutoff the analysis ran to, for the files
secret = cell_key_secret(get_store())  # the downloads' counts of people are perturbed (cell key method)
a, b, c = st.columns(3)
a.metric("Participants", f"{analysis.n:,}")
b.metric("Events", f"{analysis.events:,}")
c.metric("Person-weeks", f"{analysis.person_weeks:,}")

st.subheader("Week by week: last week's engagement and this week's risk")
st.plotly_chart(engagement_charts.hazard_ratio_figure(analysis), theme=None, key="hr")
downloads("Engagement hazard ratios",
          lambda: page_exports.hazard_ratio_export(analysis, filters, cutoff, secret=secret), key="hr", filters=filters)
st.subheader("The naive answer, and why it misleads")
st.info(EXPLANATION, icon=":material/lightbulb:")
st.plotly_chart(engagement_charts.naive_vs_correct_figure(analysis), theme=None, key="naive")
downloads("Naive and corrected hazard ratios",
          lambda: page_exports.naive_vs_correct_export(analysis, filters, cutoff, secret=secret), key="naive",
          filters=filters)
st.subheader(f"Landmark at day {day}: engagement before it, staying after it")
if any(lm.day == day for lm in analysis.landmarks):
    st.plotly_chart(engagement_charts.landmark_km_figure(analysis, day), theme=None, key="landmark_km")
    downloads(f"Landmark at day {day}",
              lambda: page_exports.landmark_km_export(analysis, day, filters, cutoff, secret=secret),
              key="landmark_km", filters=filters)
else:
    st.info(f"Nobody left to analyse at day {day} with these filters.")
st.plotly_chart(engagement_charts.dose_response_figure(analysis), theme=None, key="dose")
downloads("Dose-response", lambda: page_exports.dose_response_export(analysis, filters, cutoff, secret=secret),
          key="dose", filters=filters)
if analysis.gee:
    st.subheader("Repeated measures: reported use and craving")
    st.dataframe(analysis.gee_table(), hide_index=True, width="stretch",
                 column_config={"estimate": st.column_config.NumberColumn(format="%.3f"),
                                "ci_lower": st.column_config.NumberColumn("95% CI from", format="%.3f"),
                                "ci_upper": st.column_config.NumberColumn("95% CI to", format="%.3f"),
                                "p": st.column_config.NumberColumn(format="%.3g")})
    st.caption("GEE with participants as clusters and robust errors; it assumes that weeks without a "
               "check-in are unrelated to use, which dropping out may violate.")
for warning in analysis.warnings:
    st.warning(warning)
