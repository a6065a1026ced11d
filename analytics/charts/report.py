"""Figures of the outcome report (analytics.publish.report) that no page draws: engagement dose
and check-in outcomes by program, as grouped bars drawn from protected values.

A hidden or unknown value (NaN) has no bar and no label; a series with none has no legend entry.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analytics.charts.base import color, new_figure

__all__ = ["cohort_bars", "dose_figure", "use_figure"]


def dose_figure(values: pd.DataFrame, title: str) -> go.Figure:
    """Meetings, check-ins and mentoring sessions per active participant, by program."""
    fig = new_figure(title, height=460)
    labels = {"meetings_per_active": "Meetings", "checkins_per_active": "Check-ins",
              "mentoring_sessions_per_active": "Mentoring sessions"}
    for i, (col, label) in enumerate(labels.items()):
        fig.add_trace(_bars(values, col, label, color(i), "{:.1f}"))
    fig.update_layout(barmode="group", yaxis_title="Per active participant in the period",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


def use_figure(values: pd.DataFrame, title: str) -> go.Figure:
    """Share of check-ins reporting use beside 90-day retention, by program."""
    fig = new_figure(title, height=440)
    fig.add_trace(_bars(values, "share_reporting_use", "Check-ins reporting use", color(3), "{:.0%}"))
    fig.add_trace(_bars(values, "retained_90", "Retained at 90 days", color(0), "{:.0%}"))
    fig.update_layout(barmode="group", yaxis=dict(tickformat=".0%", range=[0, 1.1], title="Share"),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


def cohort_bars(values: pd.DataFrame, columns: list[str], title: str, axis: str = "Enrollment quarter") -> go.Figure:
    """Retention per enrollment cohort at each month column (the All row left out, and cohorts with
    no published value: an empty slot on the axis reads like a 0)."""
    drawn = values.drop(index=["All"], errors="ignore")
    drawn = drawn[drawn[columns].notna().any(axis=1)]
    fig = new_figure(title, height=440)
    names = [_months(c) for c in columns]
    for i, (col, name) in enumerate(zip(columns, names)):
        fig.add_trace(_bars(drawn, col, name, color(i), "{:.0%}"))
    single = f" at {names[0]}" if len(columns) == 1 else ""  # one trace: plotly draws no legend
    fig.update_layout(barmode="group", yaxis=dict(tickformat=".0%", range=[0, 1.1], title=f"Still in the program{single}"),
                      xaxis_title=axis, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


def _months(column: str) -> str:
    """"month_1" -> "1 month", "month_12" -> "12 months"."""
    m = column.removeprefix("month_")
    return f"{m} month" + ("" if m == "1" else "s")


def _bars(values: pd.DataFrame, column: str, name: str, hue: str, fmt: str) -> go.Bar:
    """Bars labelled with their values; a hidden or unknown value has no bar and no label
    (a bar label template would print a missing value as 0)."""
    known = values[column].notna()
    return go.Bar(x=[str(v) for v in values.index], y=values[column].astype(object).where(known, None),
                  name=name, marker_color=hue, textposition="outside", showlegend=bool(known.any()),  # no empty key
                  text=[fmt.format(v) if ok else "" for v, ok in zip(values[column], known)])
