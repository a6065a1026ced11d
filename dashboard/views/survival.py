"""Sobriety and retention: Kaplan-Meier, log-rank, Cox, competing exits (for clinicians)."""

import streamlit as st

from analytics.access import roles as access
from analytics.publish import exports
from analytics.publish import page_exports
from analytics.charts import survival as survival_charts
from analytics.outcomes.definitions import GROUP_COLUMNS
from analytics.analyses.survival import NoData, analyse
from dashboard.auth import guard
from analytics.store.queries.disclosure import cell_key_secret
from dashboard.common import cached, downloads, get_store, sidebar_filters

LABELS = {"sobriety": "Sobriety", "retention": "Retention"}

user = guard(access.ANALYTICS)
filters = sidebar_filters()
st.title("Sobriety and retention")
left, middle, right = st.columns(3)
outcome = left.segmented_control("Outcome", list(LABELS), format_func=LABELS.get, default="retention",
                                 key="outcome", bind="query-params") or "retention"
by = middle.selectbox("Compare by", [None, *GROUP_COLUMNS], key="by", bind="query-params",
                      format_func=lambda c: "No comparison" if c is None else c.replace("_", " "))
adjust = right.multiselect("Adjust the Cox model for", [c for c in GROUP_COLUMNS if c != by], key="adjust",
                           bind="query-params")

try:
    with st.spinner("Fitting survival curves and models..."):
        analysis = cached(analyse, outcome, by=by, adjust=tuple(adjust), filters=filters)
except NoData as exc:
    st.warning(f"Nothing to show: {exc}. Widen the filters in the sidebar.")
    st.stop()

d = analysis.durations
a, b, c = st.columns(3)
a.metric("Participants followed", f"{d.n:,}")
b.metric("Events", f"{d.events:,}")
c.metric("Left out (no follow-up)", f"{sum(d.left_out.values()):,}",
         help="; ".join(f"{n} {why}" for why, n in d.left_out.items()) or None)
st.caption(d.describe())

st.plotly_chart(survival_charts.km_figure(analysis), theme=None, key="km")
downloads(survival_charts.km_title(analysis),
          lambda: exports.km_export(analysis, secret=cell_key_secret(get_store())), key="km", filters=filters)
st.dataframe(analysis.summary_table(), hide_index=True, width="stretch",
             column_config={"median_days": "median (days)", "median_lower": "95% CI from",
                            "median_upper": "95% CI to",
                            **{f"survival_{t}": st.column_config.NumberColumn(
                                f"{'still in' if outcome == 'retention' else 'sober'} at {t} d", format="percent")
                               for t in (30, 90, 180, 365)},
                            "rmst_365": st.column_config.NumberColumn("RMST 365 d",
                                                                      format="%.0f")})
if analysis.logrank:
    lr = analysis.logrank
    st.write(f"**Log-rank test:** chi-square {lr.chi2:.2f} on {lr.df} df, p = {lr.p:.3g}")
if analysis.pairwise:
    st.dataframe([{"groups": f"{p.a} vs {p.b}", "chi-square": p.chi2, "p": p.p, "p (Holm)": p.p_holm}
                  for p in analysis.pairwise], hide_index=True)
if analysis.cox is not None:
    st.subheader("Hazard ratios (Cox model)")
    st.plotly_chart(survival_charts.cox_figure(analysis), theme=None, key="cox")
    downloads("Hazard ratios (Cox model)",
              lambda: page_exports.cox_export(analysis, secret=cell_key_secret(get_store())), key="cox",
              filters=filters)
for warning in analysis.warnings:
    st.warning(warning)
if analysis.incidence is not None:
    st.subheader("Dropping out vs completing")
    st.plotly_chart(survival_charts.incidence_figure(analysis), theme=None, key="incidence")
    downloads("Dropping out vs completing",
              lambda: exports.incidence_export(analysis, secret=cell_key_secret(get_store())), key="incidence",
              filters=filters)
st.caption("Associations are not proof of cause.")
