"""Cohorts (clinicians): retention by enrollment cohort, and reported use, craving and mood
by month since enrollment."""

import pandas as pd
import streamlit as st

from analytics.access import roles as access
from analytics.publish import page_exports
from analytics.analyses.cohorts import COHORT_UNITS, cohort_retention, cohort_trends
from analytics.charts.director import (
    TREND_MEASURES,
    cohort_heatmap,
    cohort_trend_figure,
)
from analytics.settings import THRESHOLD
from dashboard.auth import guard
from dashboard.common import cached, downloads, sidebar_filters

user = guard(access.ANALYTICS)
filters = sidebar_filters()
st.title("Cohorts")
by = st.segmented_control(
    "Cohorts by enrollment", list(COHORT_UNITS), default="quarter", required=True, key="cohort_by",
    bind="query-params", format_func=str.capitalize,
    help="Participants are grouped by the calendar month or quarter they enrolled in. Quarters make "
         "larger cohorts and steadier percentages.")

st.subheader("Retention by enrollment cohort")
with st.spinner("Estimating retention for every cohort..."):
    retention = cached(cohort_retention, filters, by)
if retention.empty:
    st.warning("Nothing to show: no participant matches the filters. Widen the filters in the sidebar.")
    st.stop()
st.plotly_chart(cohort_heatmap(retention), theme=None, key="cohort_heatmap")
downloads(f"Retention by enrollment {by}",
          lambda: page_exports.cohort_heatmap_export(cached(cohort_retention, filters, by, keyed=True)),
          key="cohort_heatmap", filters=filters)

table = retention.table()
months = [c for c in table.columns if c.startswith("month_")]
shown = table.copy()
for c in months:  # display only: whole percentages, blank where not known yet
    shown[c] = ["" if pd.isna(v) else f"{v:.0%}" for v in table[c]]
st.dataframe(shown, hide_index=True, width="stretch", key="cohort_table",
             column_config={"cohort": st.column_config.TextColumn("Cohort", pinned=True),
                            "n": st.column_config.NumberColumn("n", help="Participants in the cohort"),
                            **{c: c.replace("month_", "m") for c in months}})
st.caption("The chart's numbers as a table: percent of each cohort still in the program m months after "
           "enrolling (m0, m1, ...); n = participants in the cohort; blank = not known yet (not lost). Grey in "
           f"the chart (share in brackets): fewer than {THRESHOLD.default} still followed, too few to read as a "
           "finding; the counts are under \"Participants still followed\".")
with st.expander("Participants still followed at each month (the denominators)"):
    at_risk = retention.at_risk.rename(columns=lambda m: f"m{m}").reset_index()
    st.dataframe(at_risk, hide_index=True, width="stretch", key="cohort_at_risk")
    st.caption("Participants still in the program and followed at that month's day (the Kaplan-Meier risk "
               "set); blank where the share is not known yet.")

st.subheader("Reported use, craving and mood by cohort")
measure = st.segmented_control(
    "Measure", list(TREND_MEASURES), default="used_share", required=True, key="measure",
    bind="query-params", format_func=lambda m: TREND_MEASURES[m][0])
with st.spinner("Averaging check-ins by cohort and month..."):
    trends = cached(cohort_trends, filters, by)
if trends.empty:
    st.info("No check-ins for participants matching the filters.")
else:
    st.plotly_chart(cohort_trend_figure(trends, measure, by, filters), theme=None, key="cohort_trends")
    downloads(f"{TREND_MEASURES[measure][0]} by cohort",
              lambda: page_exports.cohort_trends_export(cached(cohort_trends, filters, by, keyed=True), measure,
                                                        by, filters, retention.cutoff),
              key="cohort_trends", filters=filters)
    st.caption("Click a cohort in the legend to hide it, double-click to show it alone. With cohorts by month "
               "there are many lines: quarters are easier to compare.")
