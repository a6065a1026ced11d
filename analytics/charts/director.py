"""Figures for the Overview, Engagement and Cohorts pages.

Each builder takes a result of analytics.analyses.kpis / analytics.analyses.activity / analytics.analyses.cohorts
and returns a go.Figure in our "outcomes" template (set explicitly, so an exported file
looks like the screen), with a note under the plot stating the definition, n, the
period and the filters. None computes a statistic or calls Streamlit. An empty result
gives a figure with a message, not an error.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from analytics.analyses import activity
from analytics.analyses import kpis
from analytics.charts.base import (
    dash,
    symbol,
    PALETTE,
    TEMPLATE_NAME,
    add_message,
    add_note,
    color,
    new_figure,
)
from analytics.analyses.cohorts import TRENDS_DEFINITION, CohortRetention
from analytics.outcomes.filters import Filters
from analytics.settings import THRESHOLD
from analytics.outcomes.period import Period

__all__ = ["adherence_figure", "attendance_figure", "attendance_gaps", "caseload_figure", "cohort_heatmap",
           "cohort_trend_figure", "weekday_figure", "weekly_trends_figure"]

MEETING_TYPE_LABELS = {"aa": "AA", "na": "NA", "smart": "SMART Recovery", "peer_group": "Peer group",
                       "online_community": "Online community", "other": "Other"}
MODALITY_LABELS = {"in_person": "In person", "online": "Online", "phone": "Phone", "video": "Video",
                   "text": "Text"}
TREND_LABELS = {"active": "Active participants", "meetings": "Meetings attended", "checkins": "Check-ins",
                "mentoring": "Mentoring sessions", "new_enrollments": "New enrollments"}
TREND_MEASURES = {"used_share": ("Reported any use", "Share of participants checking in", True),
                  "craving": ("Craving (0-10)", "Mean craving", False),
                  "mood": ("Mood (1-5)", "Mean mood", False)}


def _esc(text: object) -> str:
    """Labels can be user data: plotly reads text as HTML and %{...} as a template field."""
    return html.escape(str(text)).replace("%{", "%&#123;")


def _scope(period: Period | None, filters: Filters) -> str:
    parts = [f"Period {period.describe()}"] if period else []
    return "; ".join(parts + [filters.describe()]) + "."


def _empty(fig: go.Figure, text: str = "No data for this selection") -> go.Figure:
    return add_message(fig, text)


def weekly_trends_figure(trends: pd.DataFrame, period: Period, filters: Filters = Filters(),
                         columns: tuple[str, ...] = kpis.TREND_COLUMNS) -> go.Figure:
    """Weekly trend lines (analytics.analyses.kpis.weekly_trends), one panel per measure, shared x.
    Partial edge weeks (cut by the period) are drawn with open markers."""
    rows = len(columns)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[TREND_LABELS.get(c, c) for c in columns])
    note = (f"{kpis.TREND_DEFINITION} Weeks start on Monday; open markers = partial weeks. "
            f"{_scope(period, filters)}")
    height = max(600, 170 * rows + 120)
    if trends.empty:
        return _empty(new_figure("Weekly trends", note, fig=fig, height=height))
    x = pd.to_datetime(trends.week_start)
    partial = trends.partial.to_numpy(bool)
    for i, col in enumerate(columns, start=1):
        hue = color(i - 1)
        fig.add_trace(go.Scatter(
            x=x, y=trends[col], mode="lines+markers", name=TREND_LABELS.get(col, col), showlegend=False,
            line=dict(color=hue, width=2),
            marker=dict(color=["white" if p else hue for p in partial], line=dict(color=hue, width=2), size=8),
            customdata=np.stack([trends.iso_week, trends.first_day.astype(str), trends.last_day.astype(str)], axis=1),
            hovertemplate=("%{customdata[0]} (%{customdata[1]} to %{customdata[2]})<br>"
                           f"{TREND_LABELS.get(col, col)}: " + "%{y:,}<extra></extra>")), row=i, col=1)
        fig.update_yaxes(rangemode="tozero", row=i, col=1)
    fig.update_xaxes(title_text="Week starting", row=rows, col=1)
    return new_figure("Weekly trends", note, fig=fig, height=height)


def attendance_figure(attendance: pd.DataFrame, period: Period, filters: Filters = Filters(),
                      by: str = "meeting_type", freq: str = "week") -> go.Figure:
    """Meetings attended per week or month (analytics.analyses.activity.attendance_over_time), stacked
    by meeting type or by modality. Partial buckets are marked in the hover text."""
    if by not in ("meeting_type", "modality"):
        raise ValueError("by must be 'meeting_type' or 'modality'")
    labels = MEETING_TYPE_LABELS if by == "meeting_type" else MODALITY_LABELS
    what = "meeting type" if by == "meeting_type" else "modality"
    total = int(attendance.meetings.sum()) if not attendance.empty else 0
    weeks = " " + activity.DEFINITIONS["attendance_week"] if freq == "week" else ""
    note = (activity.DEFINITIONS["attendance"].format(freq=freq) + weeks + f" Total: {total:,} meetings. "
            + _scope(period, filters))
    fig = new_figure(f"Meetings attended per {freq}, by {what}", note)
    if attendance.empty:
        return _empty(fig)
    grouped = attendance.groupby(["bucket", by], as_index=False).agg(meetings=("meetings", "sum"),
                                                                     partial=("partial", "first"))
    order = [k for k in labels if k in set(grouped[by])] + sorted(set(grouped[by]) - set(labels))
    for i, key in enumerate(order):
        sub = grouped[grouped[by] == key]
        fig.add_trace(go.Bar(
            x=pd.to_datetime(sub.bucket), y=sub.meetings, name=_esc(labels.get(key, key)),
            marker_color=color(i),
            customdata=np.where(sub.partial, " (partial)", ""),
            hovertemplate="%{x|%Y-%m-%d}%{customdata}: %{y:,} meetings<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="stack", xaxis_title=("Week starting" if freq == "week" else "Month"),
                      yaxis_title="Meetings attended", legend_title_text=what.capitalize())
    return fig


def attendance_gaps(fig: go.Figure, cells: Mapping[tuple[pd.Timestamp, str], float]) -> go.Figure:
    """attendance_figure's bars set from `cells` ((bucket, category label) -> meetings; NaN = hidden):
    the builder sums per bucket, which turns a hidden cell into 0, so the gap is put back."""
    named = {(bucket, _esc(label)): value for (bucket, label), value in cells.items()}
    for trace in fig.data:
        trace.y = [named.get((pd.Timestamp(x), trace.name), np.nan) for x in trace.x]
    return fig


def weekday_figure(weekday: pd.DataFrame, period: Period, filters: Filters = Filters()) -> go.Figure:
    """Average meetings, check-ins and mentoring sessions per day, by day of the week
    (analytics.analyses.activity.weekday_pattern)."""
    note = activity.DEFINITIONS["weekday"] + " " + _scope(period, filters)
    fig = new_figure("Activity by day of the week (average per day)", note)
    if weekday.empty or int(weekday[["meetings", "checkins", "mentoring"]].to_numpy().sum()) == 0:
        return _empty(fig)
    for i, (col, label) in enumerate((("meetings", "Meetings attended"), ("checkins", "Check-ins"),
                                      ("mentoring", "Mentoring sessions"))):
        fig.add_trace(go.Bar(
            x=weekday.day_name, y=weekday[f"{col}_per_day"], name=label, marker_color=color(i),
            customdata=np.stack([weekday[col], weekday.days_in_period, weekday[f"{col}_share"].fillna(0) * 100],
                                axis=1),
            hovertemplate=("%{x}: %{y:.1f} per day (%{customdata[0]:,} on %{customdata[1]} days, "
                           "%{customdata[2]:.0f}% of the period)<extra>%{fullData.name}</extra>")))
    fig.update_layout(barmode="group", xaxis_title="Day of the week", yaxis_title="Average per day")
    return fig


def adherence_figure(distribution: pd.DataFrame, period: Period, filters: Filters = Filters()) -> go.Figure:
    """Participants per check-in adherence band (analytics.analyses.activity.adherence_distribution).
    Bands that cannot occur with the period's whole weeks (activity.possible_bands) are labelled
    "not possible in this period", not "0%"."""
    n = int(distribution.participants.sum()) if not distribution.empty else 0
    possible = activity.possible_bands(period)
    impossible = [b for b in activity.ADHERENCE_BANDS if b not in possible]
    weeks = len(period.full_weeks())
    note = activity.DEFINITIONS["adherence"] + f" n={n:,} participants. "
    if impossible:
        note += (f"With {weeks} whole week{'s' if weeks != 1 else ''} in the period, {', '.join(impossible)} "
                 "cannot occur (not possible in this period). ")
    fig = new_figure("Check-in adherence per participant", note + _scope(period, filters))
    if n == 0:
        return _empty(fig, "No active participant has a whole week in this period")
    can = [b in possible for b in distribution.band]
    fig.add_trace(go.Bar(
        x=distribution.band, y=distribution.participants, marker_color=PALETTE[0], showlegend=False,
        text=[f"{s:.0%}" if ok else "not possible in this period" for s, ok in zip(distribution.share, can)],
        textposition="outside",
        customdata=["(not possible in this period)" if not ok else "" if pd.isna(s) else f"({s:.0%})"
                    for s, ok in zip(distribution.share, can)],
        hovertemplate="%{x}: %{y:,} participants %{customdata}<extra></extra>"))
    fig.update_layout(xaxis_title="Weeks with at least one check-in", yaxis_title="Participants")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(activity.ADHERENCE_BANDS))
    return fig


def caseload_figure(caseloads: pd.DataFrame, period: Period, filters: Filters = Filters()) -> go.Figure:
    """Mentor caseloads (analytics.analyses.activity.mentor_caseloads): mentors by number of active
    mentees, and mentors by sessions per mentee per month."""
    mentors = len(caseloads)
    mentees = int(caseloads.active_mentees.sum()) if mentors else 0
    note = (activity.DEFINITIONS["caseload"] + f" {mentors:,} mentors, {mentees:,} mentor-mentee pairs. "
            + _scope(period, filters))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["Active mentees per mentor", "Sessions per mentee per month"])
    fig = new_figure("Mentor caseloads", note, fig=fig)
    if mentors == 0:
        return _empty(fig, "No mentoring sessions in this period")
    sizes = caseloads.active_mentees.value_counts().sort_index()
    fig.add_trace(go.Bar(x=sizes.index, y=sizes.to_numpy(), marker_color=PALETTE[0], showlegend=False,
                         hovertemplate="%{x} mentees: %{y:,} mentors<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Histogram(x=caseloads.sessions_per_mentee_per_month, marker_color=PALETTE[1],
                               showlegend=False, nbinsx=20,
                               hovertemplate="%{x} sessions per mentee per month: %{y:,} mentors<extra></extra>"),
                  row=1, col=2)
    fig.update_xaxes(title_text="Active mentees", dtick=1 if sizes.index.max() <= 20 else None, row=1, col=1)
    fig.update_xaxes(title_text="Sessions per mentee per month", row=1, col=2)
    fig.update_yaxes(title_text="Mentors", row=1, col=1)
    fig.update_yaxes(title_text="Mentors", row=1, col=2)
    return fig


THIN_GREY = "#BDBDBD"  # cells resting on too few people: light grey, unlike any Cividis colour


def cohort_heatmap(retention: CohortRetention, threshold: int = THRESHOLD.default) -> go.Figure:
    """The cohort retention table as a heatmap: rows = cohorts (oldest on top, n in the label),
    columns = months since enrollment, colour and text = % still in the program. Cells not
    yet known are blank (no colour, no text), never 0. Cells with fewer than `threshold` still
    followed are grey, their share in brackets and the count on hover: a 0% or 37% from one or
    two people is not a finding."""
    thin = retention.thin(threshold)
    note = retention.describe().rstrip(". ") + "."
    if thin.to_numpy().any():
        note += (f" Grey cells: fewer than {threshold} participants still followed, too few to read as a "
                 "finding (hover for the count).")
    unit = "quarter" if retention.by == "quarter" else "month"
    fig = new_figure(f"Retention by enrollment {unit}: % still in the program",
                     height=max(600, 26 * len(retention.n) + 260))
    add_note(fig, note, width=105)  # the plot starts after the cohort labels and ends before the colour bar
    if retention.empty:
        return _empty(fig)
    shares = retention.shares
    z = shares.to_numpy(float) * 100
    few = thin.to_numpy(bool)
    at_risk = retention.at_risk.astype("float").to_numpy()
    hover = [["" if np.isnan(a) else f"{int(a):,}" for a in row] for row in at_risk]
    x = [str(m) for m in shares.columns]
    ylabels = [f"{_esc(c)} (n={retention.n[c]:,})" for c in shares.index]
    cells = np.where(few, np.nan, z)
    fig.add_trace(go.Heatmap(
        z=_cells(cells), x=x, y=ylabels, text=_texts(cells, "{:.0f}"), texttemplate="%{text}",
        customdata=hover, zmin=0, zmax=100, hoverongaps=False, xgap=1, ygap=1, name="% still in",
        colorscale="Cividis",  # perceptually even, colour-vision safe; 0% is dark, never white like a blank
        colorbar=dict(title=dict(text="% still in"), ticksuffix="%"),
        hovertemplate="%{y}, month %{x}: %{z:.1f}% still in (%{customdata} still followed)<extra></extra>"))
    if few.any():
        grey = np.where(few, z, np.nan)
        fig.add_trace(go.Heatmap(
            z=_cells(np.where(few, 0.0, np.nan)), x=x, y=ylabels, text=_texts(grey, "({:.0f})"),
            texttemplate="%{text}", zmin=0, zmax=1, hoverongaps=False, xgap=1, ygap=1,
            customdata=[[f"{v:.0f}% still in, but only {a} still followed: fewer than {threshold}, too few to read"
                         if f else "" for v, a, f in zip(zr, hr, fr)] for zr, hr, fr in zip(z, hover, few)],
            colorscale=[[0, THIN_GREY], [1, THIN_GREY]], showscale=False, name="too few followed",
            meta={"role": "thin", "threshold": threshold},
            hovertemplate="%{y}, month %{x}: %{customdata}<extra></extra>"))
        fig.add_trace(go.Scatter(  # the legend entry that says what grey means
            x=[None], y=[None], mode="markers", name=f"Fewer than {threshold} still followed (too few to read)",
            marker=dict(symbol="square", size=14, color=THIN_GREY), hoverinfo="skip", showlegend=True,
            meta={"role": "thin_legend"}))
        fig.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom"))
    fig.update_yaxes(autorange="reversed", type="category", title_text=f"Enrollment {unit}", showgrid=False)
    fig.update_xaxes(type="category", title_text="Months since enrollment", showgrid=False)
    fig.update_layout(template=TEMPLATE_NAME, plot_bgcolor="white")
    return fig


def _cells(z: np.ndarray) -> list[list[float | None]]:
    """Heatmap values with NaN as None (a gap: no colour)."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in z]


def _texts(z: np.ndarray, fmt: str) -> list[list[str]]:
    return [["" if np.isnan(v) else fmt.format(v) for v in row] for row in z]


def _cohort_colours(n: int) -> list[str]:
    """One colour per cohort, oldest light to newest dark (a sequential scale, so any number of
    cohorts stay distinguishable by order)."""
    if n == 1:
        return [PALETTE[0]]
    return sample_colorscale("Viridis", [0.85 - 0.85 * i / (n - 1) for i in range(n)])


def cohort_trend_figure(trends: pd.DataFrame, measure: str = "craving", by: str = "quarter",
                        filters: Filters = Filters(), min_participants: int = THRESHOLD.default) -> go.Figure:
    """One check-in measure (used_share, craving or mood) by month since enrollment, one line
    per cohort (analytics.analyses.cohorts.cohort_trends), oldest cohort lightest. Partial months are
    drawn with open markers; months with fewer than `min_participants` participants are
    not drawn (too few to read, and docs/privacy.md: counts of 1 to 10 are never published)."""
    if measure not in TREND_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(TREND_MEASURES)}")
    title, axis, is_share = TREND_MEASURES[measure]
    n = int(trends.drop_duplicates("cohort").cohort_n.sum()) if not trends.empty else 0
    cohorts = sorted(trends.cohort.unique()) if not trends.empty else []
    note = (f"{TRENDS_DEFINITION} Open markers: month not yet complete for every member. Months with fewer "
            f"than {min_participants} participants checking in are not drawn. n={n:,} participants in "
            f"{len(cohorts)} cohorts by {by}. " + _scope(None, filters))
    fig = new_figure(f"{title} by months since enrollment, per enrollment {by}", note)
    shown = trends[trends.participants >= min_participants] if not trends.empty else trends
    if shown.empty:
        return _empty(fig)
    hues = dict(zip(cohorts, _cohort_colours(len(cohorts))))
    for k, (cohort, sub) in enumerate(shown.groupby("cohort", sort=True)):
        hue = hues[cohort]
        y = sub[measure] * 100 if is_share else sub[measure]
        fig.add_trace(go.Scatter(
            x=sub.month, y=y, mode="lines+markers", name=_esc(cohort), line=dict(color=hue, dash=dash(k)),
            marker=dict(color=[hue if c else "white" for c in sub.complete], line=dict(color=hue, width=1.5),
                        symbol=symbol(k)),
            customdata=sub.participants,
            hovertemplate=(f"{_esc(cohort)}, month " + "%{x}: %{y:.1f}" + ("%" if is_share else "")
                           + " (%{customdata:,} participants)<extra></extra>")))
    fig.update_layout(xaxis_title="Months since enrollment", yaxis_title=axis + (" (%)" if is_share else ""),
                      legend_title_text=f"Enrollment {by}")
    return fig
