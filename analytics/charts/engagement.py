"""Figures for the engagement analyses: time-varying hazard ratios, landmark Kaplan-Meier
curves by meetings tier, dose-response by tier, and the naive (biased) estimate beside
the corrected one.

Each builder takes an analytics.analyses.engagement.EngagementAnalysis and returns a go.Figure in
our "outcomes" template; none computes a statistic or calls Streamlit, so the app, the
notebook and the exports show the same numbers. Every figure carries a note with the
outcome, n, events and person-weeks, and says that associations are not proof of cause.

Reuse: the hazard-ratio forest is survival_charts.forest_figure, and the landmark curves
are survival_charts.km_figure fed a SurvivalAnalysis built from the landmark's own
Kaplan-Meier tables (bands, censor marks, medians and the numbers-at-risk table included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.stats import survival
from analytics.charts.base import MUTED, add_message, color, format_p, new_figure
from analytics.analyses.engagement import EXPLANATION, TIERS, EngagementAnalysis, Landmark
from analytics.stats.result import Estimate
from analytics.analyses.survival import SurvivalAnalysis, risk_times
from analytics.charts.survival import OUTCOME_TEXT, forest_figure, km_figure

__all__ = ["dose_response_figure", "engagement_note", "hazard_ratio_figure", "landmark_km", "landmark_km_figure",
           "landmark_survival_analysis", "naive_vs_correct_figure"]

# Term names of analytics.analyses.engagement.TERMS -> how a reader names them (singular, plural).
ENGAGEMENT_TEXT = {
    "attendance": ("meeting", "Meetings"),
    "in_person_groups": ("in-person group meeting", "In-person group meetings"),
    "online_communities": ("online community meeting", "Online community meetings"),
    "checkins": ("check-in", "Check-ins"),
    "mentoring": ("mentoring session", "Mentoring sessions"),
}
TIER_LABELS = [label for _, _, label in TIERS]  # "0", "1-3", "4-7", "8+"
NAIVE_LABEL = "naive: total engagement vs time in program — BIASED (immortal time)"
CORRECTED_LABEL = "corrected: previous week's engagement"
NAIVE_COLOR, CORRECTED_COLOR = "#D55E00", "#0072B2"  # Okabe-Ito vermillion, blue
CAUSE = "Associations are not proof of cause."


def _event(outcome: str) -> str:
    return OUTCOME_TEXT.get(outcome, ("", "", "", "the event"))[3]


def _outcome_title(outcome: str) -> str:
    return OUTCOME_TEXT.get(outcome, (outcome,))[0]


def _short_title(outcome: str) -> str:
    """'Staying in the program', 'Staying sober': the part of the outcome's title before the colon."""
    return _outcome_title(outcome).split(":")[0]


def engagement_note(analysis: EngagementAnalysis) -> str:
    """Outcome, n, events and person-weeks, and what the models were adjusted for."""
    adjusted = ", ".join(c.replace("_", " ") for c in analysis.adjusted_for) or "nothing"
    return (f"Outcome: {analysis.outcome} ({_outcome_title(analysis.outcome).lower()}); "
            f"n={analysis.n:,} participants, events={analysis.events:,} ({_event(analysis.outcome)}), "
            f"person-weeks={analysis.person_weeks:,}; models adjusted for {adjusted}.")


def _estimable(t: Estimate) -> bool:
    return all(math.isfinite(v) and v > 0 for v in (t.estimate, *t.ci))


def _ratio_text(t: Estimate) -> str:
    if not _estimable(t):
        return "not estimable"
    return f"{t.estimate:.3f} ({t.ci[0]:.3f} to {t.ci[1]:.3f}), {format_p(t.p)}"


def _log_range(values: list[float]) -> list[float]:
    """log10 axis range around the drawn values and 1, with some air."""
    lo, hi = min([*values, 1.0]) / 1.15, max([*values, 1.0]) * 1.15
    return [math.log10(lo), math.log10(hi)]


def _landmark(analysis: EngagementAnalysis, day: int) -> Landmark | None:
    return next((lm for lm in analysis.landmarks if lm.day == day), None)


# ------------------------------------------------------------- time-varying ---

def hazard_ratio_figure(analysis: EngagementAnalysis) -> go.Figure:
    """Forest plot of the time-varying Cox: HR per one more meeting / check-in / mentoring
    session in the previous week, with 95% CI, on a log axis with a line at 1."""
    event = _event(analysis.outcome)
    terms = [t for t in analysis.time_varying if t.term in ENGAGEMENT_TEXT]
    labels = [f"{ENGAGEMENT_TEXT[t.term][1]} in the previous week (per one more)" for t in terms]
    # forest_figure labels rows "term: level vs reference"; each row here compares a week after
    # one more meeting (check-in, session) with a week after one fewer.
    rows = [{"term": f"{ENGAGEMENT_TEXT[t.term][1]} in the previous week", "level": "one more",
             "reference": "one fewer", "hr": t.estimate, "ci": t.ci, "p": t.p} for t in terms]
    note = (f"{engagement_note(analysis)} Time-varying Cox model (Efron ties) on the person-week table: the rate of "
            f"{event} in a week against the in-person group meetings, online community meetings (type "
            f"online_community or modality online), check-ins and mentoring sessions of the previous week, each "
            f"adjusted for the others. Each row is the hazard ratio per one more in the previous week (the "
            f"reference is the same week after one fewer).")
    fig = forest_figure(rows, title=f"{_short_title(analysis.outcome)}: last week's engagement and this week's risk",
                        note=note, event=event, empty="No time-varying hazard ratios to show.")
    if rows:  # plainer row labels than "term: level vs reference"
        fig.update_yaxes(ticktext=labels)
        for trace in fig.data:
            if isinstance(trace.meta, dict) and trace.meta.get("role") == "hr":
                trace.customdata = [labels[int(i)] for i in trace.y]
    return fig


# ----------------------------------------------------------------- landmark ---

@dataclass
class _LandmarkFollowUp:
    """What km_figure reads from a Durations (outcome, left_out, describe()), for the
    follow-up after a landmark day."""

    outcome: str
    text: str
    left_out: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return self.text


def _tier_name(tier: str) -> str:
    return f"{tier} meetings"


def landmark_survival_analysis(analysis: EngagementAnalysis, lm: Landmark) -> SurvivalAnalysis:
    """The landmark's KM curves per tier as a SurvivalAnalysis, so km_figure can draw them (and
    analytics.publish.page_exports can protect them the way it protects any survival export)."""
    curves = {_tier_name(t): lm.curves[t] for t in TIER_LABELS if t in lm.curves}
    last = max((float(km.table.time.max()) for km in curves.values() if not km.table.empty), default=0.0)
    times = risk_times(last)
    risk, groups = [], []
    for name, km in curves.items():
        tab = km.table
        # the KM table holds every exit time with its events and censorings: the data again
        days = np.repeat(tab.time.to_numpy(float), (tab.n_event + tab.n_censor).to_numpy(int))
        event = np.repeat(np.tile([True, False], len(tab)),
                          np.column_stack([tab.n_event, tab.n_censor]).astype(int).ravel())
        risk.append(survival.risk_table(days, event, times).assign(group=name))
        groups.append(survival.summarize_group(name, km))
    event = _event(analysis.outcome)
    text = (f"{engagement_note(analysis)} Landmark at day {lm.day}: the participants still in (and without {event}) "
            f"on day {lm.day}, grouped by the meetings they attended in their first {lm.day} days of follow-up and "
            f"followed from day {lm.day}: n={lm.n:,}, events={lm.events:,} ({event}) after the landmark. The curves "
            f"are not adjusted: people in different tiers can differ in more than their meetings. {CAUSE.rstrip('.')}")
    frame = pd.concat(risk, ignore_index=True) if risk else pd.DataFrame(
        columns=["time", "at_risk", "events", "censored", "group"])
    return SurvivalAnalysis(durations=_LandmarkFollowUp(analysis.outcome, text), by="meetings tier", strata=None,
                            groups=groups, curves=curves, risk=frame, logrank=None, pairwise=[])


def landmark_km_figure(analysis: EngagementAnalysis, day: int) -> go.Figure:
    """Kaplan-Meier curves after the landmark `day`, one per meetings tier (0, 1-3, 4-7, 8+
    meetings before it), with 95% CI bands, medians and the numbers at risk per tier."""
    lm = _landmark(analysis, day)
    title = f"{_short_title(analysis.outcome)} after day {day}, by meetings in the first {day} days"
    if lm is None:
        why = next((w for w in analysis.warnings if w.startswith(f"landmark {day}:")),
                   f"day {day} was not among the landmark days analysed "
                   f"({', '.join(str(m.day) for m in analysis.landmarks) or 'none'})")
        fig = new_figure(title, f"{engagement_note(analysis)} {CAUSE}")
        return add_message(fig, f"No landmark analysis at day {day}: {why}")
    return landmark_km(landmark_survival_analysis(analysis, lm), analysis.outcome, day)


def landmark_title(outcome: str, day: int) -> str:
    return f"{_short_title(outcome)} after day {day}, by meetings in the first {day} days"


def landmark_km(curves: SurvivalAnalysis, outcome: str, day: int) -> go.Figure:
    """km_figure of a landmark's tiers (landmark_survival_analysis, or its protected copy), titled
    and labelled as days after the landmark."""
    fig = km_figure(curves)
    fig.update_layout(title_text=landmark_title(outcome, day))
    fig.update_xaxes(title_text=f"Days after day {day} (the landmark)", selector=dict(anchor="y"))
    return fig


def dose_response_figure(analysis: EngagementAnalysis) -> go.Figure:
    """Hazard ratio of each meetings tier against the lowest tier present, per landmark day
    (the landmarks' tier terms), with 95% CI, on a log axis with a line at 1."""
    event = _event(analysis.outcome)
    present = [lm for lm in analysis.landmarks if lm.tiers]
    shown = [t for lm in present for t in lm.tiers if _estimable(t)]
    missing = [f"day {lm.day}: {t.term}" for lm in present for t in lm.tiers if not _estimable(t)]
    note = (f"{engagement_note(analysis)} Landmark Cox models: among those still in (and without {event}) on the "
            f"landmark day, the rate of {event} after it by meetings attended before it, against the lowest tier "
            "anyone was in (the hollow marker at 1); adjusted as above. Below 1: "
            f"{event} later than in that tier; above 1: sooner. "
            + (f"Not estimable (too few people or events): {'; '.join(missing)}. " if missing else "")
            + " ".join(f"Day {lm.day}: n={lm.n:,}, events={lm.events:,}." for lm in analysis.landmarks)
            + " " + " ".join(analysis.warnings) + f" {CAUSE}")
    fig = new_figure(f"{_short_title(analysis.outcome)} after a landmark day, by meetings before it (dose-response)",
                     " ".join(note.split()), height=560)
    if not shown:
        return add_message(fig, "No tier comparisons to show: too few people in more than one tier.")
    offsets = np.linspace(-0.18, 0.18, len(present)) if len(present) > 1 else [0.0]
    drawn = []
    for i, (lm, dx) in enumerate(zip(present, offsets)):
        hue = color(i)
        ref = lm.tiers[0].term.split(" vs ", 1)[1]
        terms = [t for t in lm.tiers if _estimable(t)]
        tiers = [t.term.split(" meetings vs ", 1)[0] for t in terms]
        x = [TIER_LABELS.index(t) + dx for t in tiers]
        drawn += [v for t in terms for v in t.ci]
        fig.add_trace(go.Scatter(
            x=[TIER_LABELS.index(ref) + dx], y=[1.0], mode="markers", legendgroup=str(lm.day), showlegend=False,
            marker=dict(symbol="circle-open", size=11, color=hue, line=dict(width=2)),
            name=f"day {lm.day} reference", meta={"role": "reference", "day": lm.day, "tier": ref},
            hovertemplate=f"Day {lm.day}: reference tier, {ref} meetings<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=x, y=[t.estimate for t in terms], mode="markers+lines",
            name=f"landmark day {lm.day} (n={lm.n:,}; reference {ref} meetings)", legendgroup=str(lm.day),
            line=dict(color=hue, width=1, dash="dot"), marker=dict(symbol="square", size=10, color=hue),
            error_y=dict(type="data", symmetric=False, color=hue, thickness=2, width=4,
                         array=[t.ci[1] - t.estimate for t in terms],
                         arrayminus=[t.estimate - t.ci[0] for t in terms]),
            customdata=[[t.term, _ratio_text(t)] for t in terms],
            meta={"role": "hr", "day": lm.day, "reference": ref, "terms": [t.term for t in terms]},
            hovertemplate=f"Day {lm.day}: " + "%{customdata[0]}: HR %{customdata[1]}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[-0.5, len(TIER_LABELS) - 0.5], y=[1, 1], mode="lines", showlegend=False,
                             line=dict(color=MUTED, width=1.2, dash="dash"), hoverinfo="skip",
                             name="no difference (HR = 1)", meta={"role": "reference_line"}))
    fig.update_layout(
        xaxis=dict(tickvals=list(range(len(TIER_LABELS))), ticktext=[_tier_name(t) for t in TIER_LABELS],
                   range=[-0.5, len(TIER_LABELS) - 0.5], title="Meetings attended before the landmark day",
                   showgrid=False),
        yaxis=dict(type="log", range=_log_range(drawn), tick0=0, dtick=math.log10(2),  # ticks at 1/4, 1/2, 1, 2, 4
                   title="Hazard ratio vs the lowest tier (log scale)"),
        legend=dict(orientation="v", x=0, xanchor="left", y=1.0, yanchor="bottom"), margin=dict(t=150))
    return fig


# -------------------------------------------------------------------- naive ---

def naive_vs_correct_figure(analysis: EngagementAnalysis) -> go.Figure:
    """The naive, biased HR (total engagement against time in the program) beside the
    corrected time-varying HR (previous week's engagement), per engagement type, both per
    one standard deviation of their own exposure: per one meeting they are in different
    units (a total over months, a weekly count) and cannot be compared by eye."""
    event = _event(analysis.outcome)
    naive, corrected = analysis.per_sd("naive"), analysis.per_sd("time_varying")
    names = [n for n in ENGAGEMENT_TEXT if any(t.term == n for t in naive) or any(t.term == n for t in corrected)]
    sds = analysis.exposure_sd
    scale = "; ".join(f"{ENGAGEMENT_TEXT[n][1].lower()}: {sds['naive'][n]:.1f} in total, "
                      f"{sds['time_varying'][n]:.2f} a week" for n in names if n in sds.get("naive", {})
                      and n in sds.get("time_varying", {}))
    note = (f"{engagement_note(analysis)} Both hazard ratios are per one standard deviation (SD) of their own "
            f"exposure, so that they compare: the naive per SD of the total over the whole follow-up, the corrected "
            f"per SD of the previous week's count (SD {scale}). Below 1: {event} later; above 1: sooner. "
            f"{EXPLANATION} {CAUSE}")
    fig = new_figure(f"{_short_title(analysis.outcome)}: the naive answer and the corrected one", note,
                     height=150 + 110 * max(len(names), 3))
    if not names:
        return add_message(fig, "No engagement estimates to show.")
    drawn = []
    per_unit = {("naive", t.term): t for t in analysis.naive} | {("corrected", t.term): t for t in analysis.time_varying}
    for terms, label, hue, dy, role, symbol, where in (
            (naive, NAIVE_LABEL, NAIVE_COLOR, 0.17, "naive", "diamond", "bottom center"),
            (corrected, CORRECTED_LABEL, CORRECTED_COLOR, -0.17, "corrected", "square", "top center")):
        by_name = {t.term: t for t in terms}
        rows = [(i, by_name[n]) for i, n in enumerate(names) if n in by_name and _estimable(by_name[n])]
        drawn += [v for _, t in rows for v in t.ci]
        unit = "in total" if role == "naive" else "a week (previous week)"
        fig.add_trace(go.Scatter(
            x=[t.estimate for _, t in rows], y=[i + dy for i, _ in rows], mode="markers+text", name=label,
            text=[f"{t.estimate:.2f}" for _, t in rows], textposition=where, textfont=dict(color=hue, size=12),
            marker=dict(symbol=symbol, size=11, color=hue),
            error_x=dict(type="data", symmetric=False, color=hue, thickness=2, width=4,
                         array=[t.ci[1] - t.estimate for _, t in rows],
                         arrayminus=[t.estimate - t.ci[0] for _, t in rows]),
            customdata=[[t.term, t.unit, _ratio_text(t), f"one more {ENGAGEMENT_TEXT[t.term][0]} {unit}",
                         _ratio_text(per_unit[(role, t.term)])] for _, t in rows],
            meta={"role": role, "terms": [t.term for _, t in rows]},
            hovertemplate=("%{customdata[0]}, %{customdata[1]}: HR %{customdata[2]}<br>"
                           "per %{customdata[3]}: HR %{customdata[4]}<extra>" + role + "</extra>")))
    fig.add_trace(go.Scatter(x=[1, 1], y=[-0.5, len(names) - 0.5], mode="lines", showlegend=False,
                             line=dict(color=MUTED, width=1.2, dash="dash"), hoverinfo="skip",
                             name="no difference (HR = 1)", meta={"role": "reference_line"}))
    fig.update_layout(
        xaxis=dict(type="log", range=_log_range(drawn), title="Hazard ratio per one SD of the exposure (log scale)"),
        yaxis=dict(tickvals=list(range(len(names))), ticktext=[ENGAGEMENT_TEXT[n][1] for n in names],
                   range=[len(names) - 0.5, -0.5], showgrid=False),
        legend=dict(orientation="v", x=0, xanchor="left", y=1.0, yanchor="bottom"), margin=dict(t=120))
    return fig
