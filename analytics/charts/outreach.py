"""The outreach model's calibration: predicted against observed leaving, by tenth of risk.

Built from analytics.analyses.outreach.Outreach (its backtest); computes nothing itself, so
the page, the notebook and any export draw the same numbers. Staff only: the points are
from participant-level predictions, not for release.
"""

from __future__ import annotations

import plotly.graph_objects as go

from analytics.analyses.outreach import Outreach
from analytics.charts.base import MUTED, add_message, color, new_figure

__all__ = ["calibration_figure"]


def calibration_figure(result: Outreach) -> go.Figure:
    """Mean predicted chance of leaving within the horizon (x) against the share who did (y),
    one point per tenth of predicted risk, pooled over the backtest's cutoffs; the diagonal
    is perfect calibration."""
    b = result.backtest
    cal = b.calibration
    note = (f"Backtest at {len(b.cutoffs)} past cutoffs ({b.cutoffs[0] if b.cutoffs else '-'} to "
            f"{b.cutoffs[-1] if b.cutoffs else '-'}), each model fitted only on what was known then; participants "
            f"active at each cutoff grouped into tenths of predicted risk (n = {int(cal.n.sum()) if len(cal) else 0:,} "
            f"participant-cutoffs). Left = left by the retention definition within {result.horizon} days. "
            f"{result.filters.describe().capitalize()}; data to {result.as_of}.")
    fig = new_figure(f"Does the predicted risk come true? Calibration by tenth of risk ({result.horizon} days)",
                     note, height=520)
    if cal.empty:
        return add_message(fig, "No calibration to show: no model could be fitted at the past cutoffs.")
    top = float(max(cal.predicted.max(), cal.observed.max(), 0.05)) * 1.08
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect calibration",
                             line=dict(color=MUTED, dash="dot"), hoverinfo="skip", meta={"role": "diagonal"}))
    fig.add_trace(go.Scatter(
        x=cal.predicted, y=cal.observed, mode="markers+lines", name="model (by tenth of predicted risk)",
        marker=dict(color=color(0), size=9), line=dict(color=color(0)),
        customdata=list(zip(cal.tenth, cal.n)), meta={"role": "calibration"},
        hovertemplate="tenth %{customdata[0]} (n = %{customdata[1]:,})<br>predicted %{x:.1%}<br>"
                      "observed %{y:.1%}<extra></extra>"))
    fig.update_xaxes(title_text=f"Predicted chance of leaving within {result.horizon} days", tickformat=".0%",
                     range=[0, top])
    fig.update_yaxes(title_text="Share who left", tickformat=".0%", range=[0, top])
    return fig
