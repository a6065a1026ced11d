"""Overview (program directors): the KPIs of a reporting period against the period before it."""

import streamlit as st

from analytics.access import roles as access
from analytics.publish import page_exports
from analytics.charts.director import weekly_trends_figure
from analytics.analyses.kpis import Kpi, overview, weekly_trends
from analytics.outcomes.period import Period, default_period
from dashboard.auth import guard
from dashboard.common import cached, downloads, sidebar_filters

user = guard(access.ANALYTICS)
filters = sidebar_filters()
st.title("Overview")

# The reporting period (the Engagement page uses the same key, so the choice carries over in the URL).
default = cached(default_period)
picked = st.date_input(
    "Reporting period", value=(default.start, default.end), max_value=default.end, key="period",
    bind="query-params", format="YYYY-MM-DD", width=320,
    help=f"Both days included. Default: the {default.days} days up to the last date in the data ({default.end}).")
if len(picked) != 2:
    st.info("Pick the last day of the reporting period too.")
    st.stop()
period = Period(*picked)

with st.spinner("Counting this period and the previous one..."):
    ov = cached(overview, filters, period)
st.caption(f"**{period.describe()}** compared with the previous period of the same length, "
           f"**{ov.previous_period.describe()}**. Data run to {ov.cutoff}; {filters.describe()}.")

if not any(k.current or k.previous for k in ov.kpis.values() if k.kind == "count"):
    st.warning("Nothing to show: no participant matching the filters was active or enrolled in this period "
               "or the previous one. Widen the filters in the sidebar or pick another period.")
    st.stop()


def _count(v) -> str:
    return f"{int(v):,}"


def _pct(v) -> str:
    return f"{v:.1%}"


def show(col, k: Kpi) -> None:
    """One KPI as a metric with its change and, for shares, what it is computed over."""
    value = delta = None
    note = ""
    if k.kind == "count":
        value = _count(k.current)
        delta = f"{k.change:+,}"
        if k.relative_change is not None:
            delta += f" ({k.relative_change:+.1%})"
        note = f"Previous period: {_count(k.previous)}"
    elif k.key.startswith("retention"):
        days = k.key.split("_")[1]
        value = _pct(k.current) if k.current is not None else "not known yet"
        if k.change is not None:
            delta = f"{k.change * 100:+.1f} pp"
        prev = _pct(k.previous) if k.previous is not None else "not known yet"
        whose = ("enrolled in the period" if k.window == period else
                 f"enrolled {k.window.start} to {k.window.end}, the latest {period.days} days whose "
                 f"day {days} is known")
        note = (f"Of {k.current_n:,} {whose}. Before: {prev} of {k.previous_n:,} enrolled "
                f"{k.previous_window.start} to {k.previous_window.end}.")
    else:
        unit = "participant-weeks" if k.key == "adherence" else "active participants"
        value = _pct(k.current) if k.current is not None else "no whole week"
        if k.change is not None:
            delta = f"{k.change * 100:+.1f} pp"
        prev = _pct(k.previous) if k.previous is not None else "none"
        note = f"Of {k.current_n:,} {unit}. Previous period: {prev} of {k.previous_n:,}"
    flat = k.change == 0
    if flat:
        delta = "no change"
    col.metric(k.label, value, delta, help=k.definition, border=True,
               delta_color="off" if flat else "normal", delta_arrow="off" if flat else "auto",
               delta_description="vs previous" if delta else None)
    col.caption(note)


top = st.columns(4)
for col, key in zip(top, ("active", "new_enrollments", "meetings", "adherence")):
    show(col, ov.kpis[key])
bottom = st.columns(3)
for col, key in zip(bottom, ("mentoring_coverage", "retention_30", "retention_90")):
    show(col, ov.kpis[key])
st.caption("The question mark next to each label gives its exact definition. pp = percentage points.")

with st.spinner("Counting week by week..."):
    trends = cached(weekly_trends, filters, period)
st.plotly_chart(weekly_trends_figure(trends, period, filters), theme=None, key="weekly_trends")
downloads("Weekly trends",  # counts of people perturbed in the file (cell key method)
          lambda: page_exports.weekly_trends_export(cached(weekly_trends, filters, period, keyed=True), ov),
          key="weekly_trends", filters=filters)

with st.expander("All KPIs as a table, with their definitions"):
    rows = []
    for k in ov.kpis.values():
        fmt = _count if k.kind == "count" else _pct
        rows.append({
            "KPI": k.label,
            "this period": "" if k.current is None else fmt(k.current),
            "previous period": "" if k.previous is None else fmt(k.previous),
            "change": ("" if k.change is None else
                       f"{k.change:+,}" if k.kind == "count" else f"{k.change * 100:+.1f} pp"),
            "computed over (this / previous)": ("" if k.current_n is None else
                                                f"{k.current_n:,} / {k.previous_n:,}"),
            "enrolled (this / previous)": ("" if k.window is None else
                                           f"{k.window.describe()} / {k.previous_window.describe()}"),
            "definition": k.definition,
        })
    st.dataframe(rows, hide_index=True, width="stretch", key="kpi_table")
    st.caption(f"Shares are computed over participant-weeks (adherence), active participants (mentoring "
               f"coverage) or participants enrolled in the window shown (retention: the reporting period, or the "
               f"latest window of its length whose day 30 or 90 is known). "
               f"{ov.describe()}.")
