"""Recovery-capital figures (issue 14): baseline distribution, paired change, trajectories,
follow-up compliance against the target. Builders return go.Figure; the page and the report
draw them. Published versions take protected tables (hidden values are NaN: no bar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.charts.base import color, new_figure

TRAJECTORY_PEOPLE = 200  # lines drawn; the model line uses everyone


def baseline_figure(baselines: pd.DataFrame, threshold: int, note: str) -> go.Figure:
    """Histogram of baseline totals, with the threshold marked."""
    fig = new_figure("Recovery capital at baseline (BARC-10 total)", note, height=480)
    fig.add_trace(go.Histogram(x=baselines.baseline_total, xbins=dict(start=9.5, end=60.5, size=1),
                               marker_color=color(0), name="participants"))
    fig.add_vline(x=threshold - 0.5, line_dash="dash", line_color=color(3),
                  annotation_text=f"{threshold}+: went with sustained remission", annotation_position="top right")
    fig.update_layout(xaxis_title="BARC-10 total (10-60)", yaxis_title="Participants", bargap=0.05)
    return fig


def change_figure(pairs: pd.DataFrame, note: str) -> go.Figure:
    """Baseline against 6-month total, one dot per person; above the diagonal = gained."""
    fig = new_figure("Recovery capital: baseline and 6-month follow-up", note, height=560)
    for i, (program, rows) in enumerate(pairs.groupby("program")):
        fig.add_trace(go.Scatter(x=rows.baseline_total, y=rows.followup_total, mode="markers", name=program,
                                 marker=dict(color=color(i), size=7, opacity=0.6)))
    fig.add_trace(go.Scatter(x=[10, 60], y=[10, 60], mode="lines", name="no change",
                             line=dict(color="#888888", dash="dot")))
    fig.update_layout(xaxis=dict(title="Baseline total", range=[9, 61]),
                      yaxis=dict(title="6-month total", range=[9, 61]))
    return fig


def trajectory_figure(traj: pd.DataFrame, intercept: float | None, slope: float | None, note: str) -> go.Figure:
    """A sample of people's totals over months since enrollment, and the mixed model's mean line."""
    fig = new_figure("Recovery capital over time", note, height=520)
    ids = traj.participant_id.drop_duplicates()
    keep = ids.sample(min(TRAJECTORY_PEOPLE, len(ids)), random_state=1) if len(ids) else ids
    some = traj[traj.participant_id.isin(set(keep))]
    xs, ys = [], []
    for _, rows in some.groupby("participant_id"):
        xs += [*rows.months, None]
        ys += [*rows.total, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"participants (up to {TRAJECTORY_PEOPLE})",
                             line=dict(color="rgba(0,114,178,0.25)", width=1), marker=dict(size=4)))
    if slope is not None:
        t = np.array([traj.months.min(), traj.months.max()]) if len(traj) else np.array([0, 12])
        fig.add_trace(go.Scatter(x=t, y=intercept + slope * t, mode="lines", name=f"mean: {slope:+.2f} a month",
                                 line=dict(color=color(3), width=4)))
    fig.update_layout(xaxis_title="Months since enrollment", yaxis=dict(title="BARC-10 total", range=[9, 61]))
    return fig


def compliance_figure(table: pd.DataFrame, label: str, target: float, note: str | None = None,
                      title: str = "Follow-up rate against the target") -> go.Figure:
    """Bars of the follow-up rate per group (NaN: no bar), the target as a line."""
    fig = new_figure(title, note, height=480)
    known = table.rate.notna()
    fig.add_trace(go.Bar(x=[str(v) for v in table[label]], y=table.rate.astype(object).where(known, None),
                         marker_color=color(0), name="done / due", textposition="outside",
                         text=[f"{v:.0%}" if ok else "" for v, ok in zip(table.rate, known)]))
    fig.add_hline(y=target, line_dash="dash", line_color=color(3), annotation_text=f"target {target:.0%}",
                  annotation_position="top left")
    fig.update_layout(yaxis=dict(tickformat=".0%", range=[0, 1.1], title="Follow-ups done / due"))
    return fig


def mean_change_figure(table: pd.DataFrame, title: str = "Change in recovery capital, baseline to 6 months",
                       note: str | None = None) -> go.Figure:
    """Mean change per group with its 95% CI (NaN: no bar)."""
    fig = new_figure(title, note, height=460)
    known = table.mean_change.notna()
    fig.add_trace(go.Bar(
        x=[str(v) for v in table.index], y=table.mean_change.astype(object).where(known, None),
        marker_color=color(2), name="mean change", textposition="none",
        text=[f"{v:+.1f}" if ok else "" for v, ok in zip(table.mean_change, known)],
        error_y=dict(type="data", symmetric=False, array=(table.ci_high - table.mean_change).where(known, None),
                     arrayminus=(table.mean_change - table.ci_low).where(known, None))))
    for group, row in table[known].iterrows():  # the value above its CI: on the bar's top the CI line crossed it
        top = max(v for v in (row.mean_change, row.get("ci_high"), 0.0) if pd.notna(v))
        fig.add_annotation(x=str(group), y=top, text=f"{row.mean_change:+.1f}", yanchor="bottom", showarrow=False,
                           name="value", font=dict(size=13))
    fig.update_layout(yaxis_title="Mean change in BARC-10 total (points)")
    return fig
