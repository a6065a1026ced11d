"""Figures of the engagement analyses (go.Figure, our template): hazard ratios per weekly
engagement, landmark KM curves by meetings tier, dose-response, naive vs corrected."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from analytics.charts import add_message, color, format_p, new_figure
from analytics.engagement import EXPLANATION, EngagementAnalysis, Term
from analytics.survival_charts import _add_km_group, forest_figure

CAUTION = "Associations, not proof of cause."
LABELS = {"attendance": "meeting", "checkins": "check-in", "mentoring": "mentoring session"}


def _note(a: EngagementAnalysis, extra: str = "") -> str:
    event = "leaving the program" if a.outcome == "retention" else "first reported use"
    return (f"Outcome: {event}. n={a.n:,} participants, {a.events:,} events, {a.person_weeks:,} person-weeks; "
            f"adjusted for {', '.join(a.adjusted_for) or 'nothing'}. {extra} {CAUTION}").strip()


def _row(t: Term, label: str) -> dict:
    return {"term": t.term, "level": "", "reference": "", "hr": t.estimate, "ci": list(t.ci), "p": t.p,
            "label": label}


def hazard_ratio_figure(a: EngagementAnalysis) -> go.Figure:
    """Time-varying Cox: HR per one more meeting / check-in / session in the previous week."""
    rows = [_row(t, f"one more {LABELS.get(t.term, t.term)} last week") for t in a.time_varying]
    return forest_figure(rows, title="Last week's engagement and this week's risk",
                         note=_note(a, "Time-varying Cox model on person-weeks (Efron ties)."),
                         event="the event")


def naive_vs_correct_figure(a: EngagementAnalysis) -> go.Figure:
    """The biased naive HR beside the corrected time-varying HR, per engagement type."""
    fig = new_figure("Naive vs corrected estimate",
                     _note(a, "Naive: per one more in total over the whole stay, BIASED (immortal time). "
                              "Corrected: per one more in the previous week. " + EXPLANATION.split(". ")[0] + "."),
                     height=420)
    pairs = [("naive: total engagement vs time in program (BIASED)", a.naive, color(5)),
             ("corrected: previous week's engagement", a.time_varying, color(0))]
    terms = [t.term for t in a.time_varying]
    if not terms:
        return add_message(fig, "No estimates to compare.")
    for offset, (name, source, hue) in zip((-0.15, 0.15), pairs):
        found = {t.term: t for t in source}
        ys = [i + offset for i, term in enumerate(terms) if term in found]
        ts = [found[term] for term in terms if term in found]
        fig.add_trace(go.Scatter(
            x=[t.estimate for t in ts], y=ys, mode="markers", name=name, marker=dict(size=10, color=hue),
            meta={"role": "naive" if "naive" in name else "corrected"},
            error_x=dict(type="data", symmetric=False, array=[t.ci[1] - t.estimate for t in ts],
                         arrayminus=[t.estimate - t.ci[0] for t in ts], color=hue),
            hovertemplate="HR %{x:.3f}<extra>" + name + "</extra>"))
    fig.add_vline(x=1, line=dict(color="#777777", dash="dash"))
    fig.update_layout(xaxis=dict(type="log", title="Hazard ratio per one more (log scale)"),
                      yaxis=dict(tickvals=list(range(len(terms))), ticktext=[LABELS.get(t, t) for t in terms],
                                 autorange="reversed"),
                      legend=dict(orientation="h", y=1.12))
    return fig


def landmark_km_figure(a: EngagementAnalysis, day: int) -> go.Figure:
    """KM curves after the landmark day by meetings tier before it, with CI bands."""
    lm = next((m for m in a.landmarks if m.day == day), None)
    fig = new_figure(f"After day {day}, by meetings attended before it",
                     _note(a, f"Landmark analysis: only those still in at day {day}; days counted from it. "
                              "95% CI, log-log."), height=520)
    if lm is None or not lm.curves:
        return add_message(fig, f"Nobody to analyse at day {day}.")
    for i, (tier, km) in enumerate(lm.curves.items()):
        _add_km_group(fig, f"{tier} meetings", km, color(i))
    fig.update_layout(xaxis=dict(title=f"Days after day {day}"), yaxis=dict(title="Still in", range=[0, 1.02],
                                                                        tickformat=".0%"))
    return fig


def dose_response_figure(a: EngagementAnalysis) -> go.Figure:
    """Hazard ratio by meetings tier before each landmark, against the lowest tier."""
    fig = new_figure("Dose-response: meetings before the landmark",
                     _note(a, "Cox hazard ratio of each tier against the lowest tier present, per landmark day."),
                     height=460)
    drawn = False
    for i, lm in enumerate(a.landmarks):
        ts = [t for t in lm.tiers if math.isfinite(t.estimate)]
        if not ts:
            continue
        drawn = True
        fig.add_trace(go.Scatter(
            x=[t.term for t in ts], y=[t.estimate for t in ts], mode="markers+lines", name=f"day {lm.day}",
            marker=dict(size=9, color=color(i)), line=dict(color=color(i)), meta={"role": "tiers", "day": lm.day},
            error_y=dict(type="data", symmetric=False, array=[t.ci[1] - t.estimate for t in ts],
                         arrayminus=[t.estimate - t.ci[0] for t in ts], color=color(i)),
            customdata=[format_p(t.p) for t in ts],
            hovertemplate="%{x}: HR %{y:.2f}, %{customdata}<extra>day " + str(lm.day) + "</extra>"))
    if not drawn:
        return add_message(fig, "No tier comparisons to show.")
    fig.add_hline(y=1, line=dict(color="#777777", dash="dash"))
    fig.update_layout(yaxis=dict(type="log", title="Hazard ratio (log scale)"), xaxis=dict(title="Meetings tier"))
    return fig
