"""Figures for a survival analysis: Kaplan-Meier with numbers at risk, Cox forest plot,
cumulative incidence of competing exits.

Each builder takes results from analytics.analyses.survival and returns a go.Figure; none
computes a statistic or calls Streamlit, so the app, the notebooks and the exports show
the same numbers and a figure can be tested and written to a file. Every figure carries
a note with the outcome definition, n, events and cutoff: a chart that leaves the app
must say what it counts.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analytics.charts.base import MUTED, WIDTH, add_message, add_note, color, dash, format_p, new_figure, rgba
from analytics.settings import THRESHOLD
from analytics.stats.survival import KaplanMeier
from analytics.analyses.survival import ALL, SurvivalAnalysis

__all__ = ["cox_figure", "forest_figure", "incidence_figure", "km_figure", "km_title", "life_table_figure",
           "time_ticks"]

CI_NOTE = "95% CI, log-log"
BAND_ALPHA = 0.15
OUTCOME_TEXT = {  # title, y-axis, x-axis, what the event is
    "sobriety": ("Staying sober: time to the first reported use", "Still sober (no use reported)",
                 "Days since sobriety start", "first reported use"),
    "retention": ("Staying in the program: time to dropping out", "Still in the program",
                  "Days since enrollment", "dropping out"),
}
EXIT_STYLE = {  # exit type -> label, colour (Okabe-Ito), line style
    "dropped_out": ("Dropped out", "#D55E00", "solid"),
    "completed": ("Completed", "#009E73", "dash"),
    "other_exit": ("Other exit (transfer, custody, death, other)", "#0072B2", "dot"),
}
RISK_ROWS = (("at_risk", "At risk"), ("events", "Events"), ("censored", "Censored"))
PLOT_PX, GAP_PX, ROW_PX = 420, 90, 19
FOREST_TEXT_X = 0.74  # paper x where the "HR (95% CI)" column starts


def _esc(text: str) -> str:
    """Group names are user data; plotly reads text as HTML and %{...} as a template field."""
    return html.escape(str(text)).replace("%{", "%&#123;")


def km_title(analysis: SurvivalAnalysis) -> str:
    base = OUTCOME_TEXT.get(analysis.outcome, (analysis.outcome,))[0]
    return f"{base}, by {analysis.by.replace('_', ' ')}" if analysis.by else base


def _logrank_text(analysis: SurvivalAnalysis) -> str:
    lr = analysis.logrank
    if lr is None:
        return ""
    strat = f", stratified by {analysis.strata}" if analysis.strata else ""
    return f"Log-rank{strat}: chi2 = {lr.chi2:.2f} on {lr.df} df, {format_p(lr.p)}."


def _left_out_text(analysis: SurvivalAnalysis) -> str:
    left = analysis.durations.left_out
    return ("Left out: " + "; ".join(f"{_count(n)} {why}" for why, n in left.items()) + ".") if left else ""


def _count(v: Any) -> str:
    """A count as text; exports pass counts already hidden as "<11" or "*" (analytics.publish.privacy)."""
    return v if isinstance(v, str) else f"{int(v):,}"


def km_note(analysis: SurvivalAnalysis, thin: int | None = None) -> str:
    """Definition, n, events, cutoff, CI method, log-rank and who was left out, in one note;
    ``thin``: the threshold below which a curve was faded, when one was."""
    faded = (f"Faded dotted line, no band: fewer than {thin} still at risk, too few to read." if thin else "")
    parts = [analysis.durations.describe() + ".",
             f"Kaplan-Meier with {CI_NOTE} bands; + marks a censored participant; dashed: median.", faded,
             _logrank_text(analysis), _left_out_text(analysis)]
    return " ".join(p for p in parts if p)


def _step_xy(km: KaplanMeier, column: str, start: float = 1.0) -> tuple[list[float], list[float]]:
    """The curve from (0, start) through each row of the KM table (drawn with line_shape='hv')."""
    tab = km.table
    return [0.0, *tab.time.astype(float)], [start, *tab[column].astype(float)]


def _add_band(fig: go.Figure, x: Sequence[float], lower: Sequence[float], upper: Sequence[float],
              hue: str, group: str, kind: str, axes: dict) -> None:
    """A semi-transparent CI band: upper edge, then lower edge filled up to it."""
    x, lo, hi = (np.asarray(v, float) for v in (x, lower, upper))
    ok = np.isfinite(lo) & np.isfinite(hi)
    common = dict(mode="lines", line=dict(width=0, shape="hv"), legendgroup=group, showlegend=False,
                  hoverinfo="skip", **axes)
    fig.add_trace(go.Scatter(x=x[ok], y=hi[ok], name=f"{group} {kind} upper",
                             meta={"role": "ci_upper", "group": group, "kind": kind}, **common))
    fig.add_trace(go.Scatter(x=x[ok], y=lo[ok], name=f"{group} {kind} lower", fill="tonexty",
                             fillcolor=rgba(hue, BAND_ALPHA),
                             meta={"role": "ci_lower", "group": group, "kind": kind}, **common))


def _thin_from(at_risk: Sequence[int], threshold: int) -> int | None:
    """Index of the last step point before the risk set falls below ``threshold`` (the curve
    after it rests on fewer people), or None when it never does."""
    for i, n in enumerate(at_risk):
        if n < threshold:
            return max(i - 1, 0)
    return None


def _add_km_group(fig: go.Figure, name: str, km: KaplanMeier, hue: str, style: str = "solid",
                  threshold: int = THRESHOLD.default) -> bool:
    """Band, step curve and censor marks of one group, toggled together from the legend. Past the
    point where fewer than ``threshold`` remain at risk the curve is faded (one person moves it
    by 10 points or more) and the band stops. Returns whether the curve has such a faded part."""
    x, y = _step_xy(km, "surv")
    at_risk = [km.n, *km.table.n_risk]
    cut = _thin_from(at_risk, threshold)
    solid = len(x) if cut is None else cut + 1
    _add_band(fig, x[:solid], _step_xy(km, "lower")[1][:solid], _step_xy(km, "upper")[1][:solid], hue, name,
              "survival", dict(xaxis="x", yaxis="y"))
    label = "All participants" if name == ALL else _esc(name)
    fig.add_trace(go.Scatter(
        x=x[:solid], y=y[:solid], name=f"{label} (n={km.n:,})", mode="lines",
        line=dict(color=hue, width=2.5, shape="hv", dash=style),
        legendgroup=name, customdata=at_risk[:solid], meta={"role": "curve", "group": name},
        hovertemplate="Day %{x:.0f}: %{y:.1%} (at risk %{customdata:,})<extra>" + label + "</extra>"))
    if cut is not None:
        fig.add_trace(go.Scatter(
            x=x[cut:], y=y[cut:], name=f"{label}: fewer than {threshold} at risk", mode="lines", showlegend=False,
            line=dict(color=rgba(hue, 0.4), width=1.5, shape="hv", dash="dot"), legendgroup=name,
            customdata=at_risk[cut:], meta={"role": "thin", "group": name, "threshold": threshold},
            hovertemplate=("Day %{x:.0f}: %{y:.1%} (at risk %{customdata:,}: fewer than " + str(threshold)
                           + ", too few to read)<extra>" + label + "</extra>")))
    cens = km.table[km.table.n_censor > 0]
    fig.add_trace(go.Scatter(
        x=cens.time, y=cens.surv, name=f"{name} censored", mode="markers", legendgroup=name,
        showlegend=False, meta={"role": "censor", "group": name}, hoverinfo="skip",
        marker=dict(symbol="cross-thin", size=7, color=hue, line=dict(color=hue, width=1.3))))
    return cut is not None


def _add_medians(fig: go.Figure, analysis: SurvivalAnalysis, hues: dict[str, str]) -> None:
    """Dashed drops from S = 0.5 to the x-axis at each median reached, and one guide at 0.5."""
    reached = [g for g in analysis.groups if g.median is not None and g.group in hues]
    if not reached:
        return
    fig.add_trace(go.Scatter(x=[0, max(g.median for g in reached)], y=[0.5, 0.5], mode="lines",
                             line=dict(color=MUTED, width=1, dash="dot"), showlegend=False,
                             hoverinfo="skip", name="median guide", meta={"role": "median_guide"}))
    for g in reached:
        lo, hi = (f"{v:.0f}" if v is not None else "not reached" for v in g.median_ci)
        fig.add_trace(go.Scatter(
            x=[g.median, g.median], y=[0.5, 0], mode="lines", legendgroup=g.group, showlegend=False,
            line=dict(color=hues[g.group], width=1.5, dash="dash"), name=f"{g.group} median",
            meta={"role": "median", "group": g.group},
            hovertemplate=f"Median {g.median:.0f} days (95% CI {lo} to {hi})<extra>{_esc(g.group)}</extra>"))


def _risk_layout(groups: list[str]) -> tuple[list[tuple[str, str, int]], dict[str, int], int]:
    """Rows of the numbers-at-risk table: (group, column, row) for counts, header row per group."""
    headers, rows, i = {}, [], 0
    for g in groups:
        if len(groups) > 1:
            headers[g] = i
            i += 1
        for col, _ in RISK_ROWS:
            rows.append((g, col, i))
            i += 1
    return rows, headers, i


def _add_risk_table(fig: go.Figure, risk: pd.DataFrame, hues: dict[str, str]) -> int:
    """KMunicate-style counts under the plot, one text trace per group and count, at the x ticks."""
    groups = list(hues)
    rows, headers, n_rows = _risk_layout(groups)
    labels = dict(RISK_ROWS)
    for g, col, row in rows:
        sub = risk[risk.group == g]
        fig.add_trace(go.Scatter(
            x=sub.time, y=[row] * len(sub), text=[_count(v) for v in sub[col]], mode="text",
            textfont=dict(color=hues[g], size=12), xaxis="x2", yaxis="y2", showlegend=False,
            hoverinfo="skip", name=f"{g} {labels[col].lower()}",
            meta={"role": "risk", "group": g, "column": col}))
    for g, row in headers.items():
        fig.add_annotation(text=f"<b>{_esc(g)}</b>", xref="paper", yref="y2", x=0, y=row, xanchor="left",
                           showarrow=False, font=dict(color=hues[g], size=12))
    fig.update_layout(yaxis2=dict(
        range=[n_rows - 0.5, -0.5], tickvals=[r for _, _, r in rows], showgrid=False, showline=False,
        ticktext=[labels[c] for _, c, _ in rows], ticks="", zeroline=False, tickfont=dict(size=12)))
    return n_rows


def km_figure(analysis: SurvivalAnalysis, threshold: int = THRESHOLD.default) -> go.Figure:
    """Kaplan-Meier curves per group with CI bands, censor marks, medians and numbers at risk;
    each curve faded where fewer than ``threshold`` remain at risk."""
    hues = {name: color(i) for i, name in enumerate(analysis.curves)}
    drawn = {name: km for name, km in analysis.curves.items() if not km.table.empty}
    texts = OUTCOME_TEXT.get(analysis.outcome, ("", "Survival", "Days", "the event"))
    fig = go.Figure()
    styles = {name: dash(i) for i, name in enumerate(analysis.curves)}
    faded = [_add_km_group(fig, name, km, hues[name], styles[name], threshold) for name, km in drawn.items()]
    _add_medians(fig, analysis, {g: hues[g] for g in drawn})
    n_rows = _add_risk_table(fig, analysis.risk, hues)
    table_px = ROW_PX * n_rows
    inner = PLOT_PX + GAP_PX + table_px
    ticks = sorted(analysis.risk.time.unique())
    last = max([*ticks, *(km.table.time.max() for km in drawn.values())], default=365)
    pad = 0.03 * last
    fig.update_layout(
        xaxis=dict(domain=[0, 1], anchor="y", range=[-pad, last + pad], tickvals=ticks, title=texts[2]),
        xaxis2=dict(domain=[0, 1], anchor="y2", matches="x", showticklabels=False, showgrid=False,
                    showline=False, ticks=""),
        yaxis=dict(domain=[(table_px + GAP_PX) / inner, 1], range=[0, 1.03], tickformat=".0%",
                   title=texts[1]),
        yaxis2=dict(domain=[0, table_px / inner]),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", yref="paper"))
    fig.add_annotation(text="Numbers at risk (and events, censored so far)", xref="paper", yref="paper",
                       x=0, y=table_px / inner, yshift=6, xanchor="left", yanchor="bottom",
                       showarrow=False, font=dict(size=13))
    new_figure(km_title(analysis), fig=fig, height=inner + 125)
    add_note(fig, km_note(analysis, threshold if any(faded) else None), below_px=15)
    if not drawn:
        add_message(fig, "No one to show: no follow-up in any group.")
    return fig


def _term_row(t: Any) -> dict:
    """An Estimate (a level against its reference) or its JSON dict as {term, level, reference,
    hr, lo, hi, p}."""
    get = t.get if isinstance(t, Mapping) else lambda k, d=None: getattr(t, "estimate" if k == "hr" else k, d)
    lo, hi = get("ci") or (math.nan, math.nan)
    return {"term": get("term"), "level": get("level"), "reference": get("reference"),
            "hr": _float(get("hr")), "lo": _float(lo), "hi": _float(hi), "p": get("p"), "label": get("label")}


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _hr_text(r: dict) -> str:
    if not all(math.isfinite(r[k]) and r[k] > 0 for k in ("hr", "lo", "hi")):
        return "not estimable"
    return f"{r['hr']:.2f} ({r['lo']:.2f} to {r['hi']:.2f}), {format_p(r['p'])}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    nice = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20]
    return [v for v in nice if lo <= v <= hi] or [1]


def forest_figure(cox_terms: Any, *, title: str = "Hazard ratios (Cox model)", note: str = "",
                  event: str = "the event", empty: str = "No hazard ratios to show.") -> go.Figure:
    """Hazard ratios with 95% CI on a log axis, one row per 'term: level vs reference'.

    cox_terms: a CoxResult (its .terms), a list of Estimate, or the "cox" list of its JSON;
    a dict may carry its own row "label".
    Terms that cannot be estimated (infinite or missing HR) are listed but not drawn.
    """
    terms = getattr(cox_terms, "terms", cox_terms) or []
    rows = [_term_row(t) for t in terms]
    caution = (f"HR below 1: {event} came later than in the reference group; above 1: sooner. "
               "Associations, not proof of cause.")
    fig = new_figure(title, f"{note} {caution}".strip(), height=170 + 36 * max(len(rows), 3))
    if not rows:
        return add_message(fig, empty)
    labels = [_esc(r["label"] or f"{r['term'].replace('_', ' ')}: {r['level']} vs {r['reference']}") for r in rows]
    ok = [i for i, r in enumerate(rows) if _hr_text(r) != "not estimable"]
    fig.add_trace(go.Scatter(
        x=[rows[i]["hr"] for i in ok], y=ok, mode="markers", name="hazard ratio", showlegend=False,
        marker=dict(symbol="square", size=10, color=color(0)), meta={"role": "hr"},
        error_x=dict(type="data", symmetric=False, color=color(0), thickness=2, width=0,
                     array=[rows[i]["hi"] - rows[i]["hr"] for i in ok],
                     arrayminus=[rows[i]["hr"] - rows[i]["lo"] for i in ok]),
        customdata=[labels[i] for i in ok], hovertemplate="%{customdata}: HR %{x:.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[1, 1], y=[-0.5, len(rows) - 0.5], mode="lines", showlegend=False,
                             line=dict(color=MUTED, width=1.2, dash="dash"), hoverinfo="skip",
                             name="no difference (HR = 1)", meta={"role": "reference_line"}))
    for i, r in enumerate(rows):
        fig.add_annotation(text=_hr_text(r), xref="paper", yref="y", x=FOREST_TEXT_X, y=i, xanchor="left",
                           showarrow=False, font=dict(size=13))
    fig.add_annotation(text="<b>HR (95% CI)</b>", xref="paper", yref="y", x=FOREST_TEXT_X, y=-0.5,
                       xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=13))
    # Labels sit inside the paper, left of the plot, so the title and note can start at the edge.
    label_share = min(0.5, (7.2 * max(map(len, labels)) + 16) / (WIDTH - 40))
    drawn = [v for i in ok for v in (rows[i]["lo"], rows[i]["hi"])] + [1.0]
    lo, hi = min(drawn) / 1.25, max(drawn) * 1.25
    fig.update_layout(
        xaxis=dict(type="log", range=[math.log10(lo), math.log10(hi)], tickvals=_log_ticks(lo, hi),
                   title="Hazard ratio (log scale)", domain=[label_share, FOREST_TEXT_X - 0.03]),
        yaxis=dict(tickvals=list(range(len(rows))), ticktext=labels, range=[len(rows) - 0.5, -1.0],
                   showgrid=False),
        margin=dict(l=20, r=20))
    return fig


def cox_figure(analysis: SurvivalAnalysis) -> go.Figure:
    """The forest plot of `analysis.cox`, titled and noted from the analysis; says why if absent."""
    event = OUTCOME_TEXT.get(analysis.outcome, ("", "", "", "the event"))[3]
    note = analysis.durations.describe() + ". Cox model, Efron ties."
    cox = analysis.cox
    if cox is not None:
        flagged = [t for t in cox.to_json().get("ph_test", []) if t.get("p") is not None and t["p"] < 0.05]
        if flagged:
            note += " Proportional-hazards check flags " + ", ".join(
                f"{t['term']} ({format_p(t['p'])})" for t in flagged) + ": its HR is an average over time."
    why = "; ".join(analysis.warnings) or "no covariates were given"
    title = f"{OUTCOME_TEXT.get(analysis.outcome, (analysis.outcome,))[0]}: hazard ratios"
    return forest_figure(cox if cox is not None else [], note=note, event=event, title=title,
                         empty=f"No Cox model: {why}")


def incidence_figure(analysis: SurvivalAnalysis) -> go.Figure:
    """Cumulative incidence of dropping out vs completing (and other exits), one panel per group."""
    inc = analysis.incidence
    if inc is None:
        raise ValueError("cumulative incidence of competing exits exists for the retention outcome only")
    groups = list(analysis.curves)
    fig, nrows, cols, title_px = _panels([str(g) for g in groups])
    title = "Leaving the program: dropping out vs completing" + (
        f", by {analysis.by.replace('_', ' ')}" if analysis.by else "")
    note = (f"{analysis.durations.describe()}. Cumulative incidence (Aalen-Johansen) with 95% CI. "
            "Completing the program is not failing: it is shown beside dropping out, and someone "
            "who completed can no longer drop out. " + _left_out_text(analysis))
    new_figure(title, note, fig=fig, height=fig.layout.height)
    if inc.empty:
        return add_message(fig, "No exits recorded yet.")
    shown: set[str] = set()
    for i, g in enumerate(groups):
        axes = dict(row=i // cols + 1, col=i % cols + 1)
        for kind, sub in inc[inc.group == g].groupby("exit_type", sort=False):
            _add_incidence_curve(fig, g, str(kind), sub, axes, kind not in shown)
            shown.add(str(kind))
    top = float(np.nanmax(inc.upper.to_numpy(float)))
    fig.update_xaxes(matches="x")  # one time scale, so panels compare at a glance
    fig.update_yaxes(range=[0, min(1.0, top * 1.08 + 0.02)], tickformat=".0%")
    fig.update_yaxes(title="Cumulative incidence", col=1)
    fig.update_xaxes(title="Days since enrollment", row=nrows)
    _panel_legend(fig, title_px)
    return fig


PANEL_GAP, PANEL_TITLE_PX, PANEL_TITLE_LINES = 0.04, 16, 3  # subplot titles: font size (plotly: ours + 2)


def _panel_titles(titles: list[str], cols: int, width: int = WIDTH) -> list[str]:
    """Subplot titles wrapped to their panel's width (at most three lines, the rest cut with "..."):
    long program names side by side would otherwise run into each other."""
    panel_px = (width - 100) * (1 - PANEL_GAP * (cols - 1)) / cols
    chars = max(12, int(panel_px / (PANEL_TITLE_PX * 0.6)))
    out = []
    for t in titles:
        lines = textwrap.wrap(t, chars) or [""]
        if len(lines) > PANEL_TITLE_LINES:
            lines = [*lines[:PANEL_TITLE_LINES - 1], textwrap.shorten(" ".join(lines[PANEL_TITLE_LINES - 1:]),
                                                                      chars, placeholder="...")]
        out.append("<br>".join(_esc(line) for line in lines))
    return out


def _panels(titles: list[str]) -> tuple[go.Figure, int, int, int]:
    """(figure, rows, columns, pixels of extra title lines): one panel per group, three to a row, with
    wrapped titles; the figure grows by the extra title lines (above the first row and between rows)
    so no title meets a panel or the legend."""
    cols = min(3, len(titles))
    nrows = math.ceil(len(titles) / cols)
    wrapped = _panel_titles(titles, cols) if len(titles) > 1 else None
    extra = (max(t.count("<br>") for t in wrapped) if wrapped else 0) * int(PANEL_TITLE_PX * 1.25)
    plot_px = 330 * nrows
    spacing = (0.12 * plot_px + extra) / (plot_px + extra * nrows) if nrows > 1 else 0.12
    fig = make_subplots(rows=nrows, cols=cols, shared_yaxes=True, shared_xaxes=True, subplot_titles=wrapped,
                        horizontal_spacing=PANEL_GAP, vertical_spacing=spacing)
    fig.update_layout(height=150 + plot_px + extra * nrows)
    return fig, nrows, cols, extra


def _panel_legend(fig: go.Figure, title_px: int) -> None:
    """The legend in a row of its own under the title, above the (possibly wrapped) panel titles."""
    fig.update_layout(margin=dict(t=115 + title_px), legend=dict(
        orientation="h", x=0, xanchor="left", yref="container", y=1 - 50 / fig.layout.height, yanchor="top"))


def _add_incidence_curve(fig: go.Figure, group: str, kind: str, sub: pd.DataFrame, axes: dict,
                         legend: bool) -> None:
    label, hue, style = EXIT_STYLE.get(kind, (kind, MUTED, "solid"))
    x = [0.0, *sub.time.astype(float)]
    lower, upper = [0.0, *sub.lower.astype(float)], [0.0, *sub.upper.astype(float)]
    for y, role in ((upper, "ci_upper"), (lower, "ci_lower")):
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines", line=dict(width=0, shape="hv"), legendgroup=kind, showlegend=False,
            hoverinfo="skip", fill="tonexty" if role == "ci_lower" else None,
            fillcolor=rgba(hue, BAND_ALPHA), name=f"{group} {label} {role}",
            meta={"role": role, "group": group, "exit_type": kind}), **axes)
    fig.add_trace(go.Scatter(
        x=x, y=[0.0, *sub.incidence.astype(float)], mode="lines", name=label, legendgroup=kind,
        showlegend=legend, line=dict(color=hue, width=2.5, shape="hv", dash=style),
        meta={"role": "incidence", "group": group, "exit_type": kind},
        hovertemplate="Day %{x:.0f}: %{y:.1%}<extra>" + f"{_esc(group)}: {label}" + "</extra>"), **axes)


def time_ticks(last: float) -> dict:
    """Readable day ticks for a time axis ending at ``last``: every 30, 90 or 180 days."""
    step = 30 if last <= 210 else 90 if last <= 800 else 180
    return dict(tickmode="linear", tick0=0, dtick=step, range=[-0.03 * last, last * 1.03])


def life_table_figure(table: Any, title: str, outcome: str, horizon: int, note: str) -> go.Figure:
    """Survival from a protected life table (analytics.publish.disclosure.LifeTable): a point per
    published day joined by lines, and the numbers at risk (events, censored so far) under it.
    Takes the table's rows only, so it can draw nothing that the table does not publish."""
    rows = table.rows()
    groups = list(table.groups)
    hues = {g: color(i) for i, g in enumerate(groups)}
    texts = OUTCOME_TEXT.get(outcome, ("", "Survival", "Days", "the event"))
    fig = go.Figure()
    for i, g in enumerate(groups):
        sub = rows[rows.group == g]
        label = "All participants" if g == ALL else _esc(g)
        alone = ": not published past day 0" if len(sub) == 1 else ""  # a lone point hides under the others
        fig.add_trace(go.Scatter(
            x=sub.time, y=sub.survival, name=f"{label} (n={table.n[g]:,}){alone}", mode="lines+markers",
            line=dict(color=hues[g], width=2.5, dash=dash(i)), marker=dict(size=7), legendgroup=g,
            customdata=sub.at_risk, meta={"role": "curve", "group": g},
            hovertemplate="Day %{x:.0f}: %{y:.1%} (at risk %{customdata:,})<extra>" + label + "</extra>"))
    risk = rows.assign(events=rows.groupby("group").events.transform(lambda s: s.shift(1, fill_value=0).cumsum()),
                       censored=rows.groupby("group").censored.transform(
                           lambda s: s.shift(1, fill_value=0).cumsum()))
    n_rows = _add_risk_table(fig, risk.astype({"at_risk": int, "events": int, "censored": int}), hues)
    table_px = ROW_PX * n_rows
    inner = PLOT_PX + GAP_PX + table_px
    last = max([horizon, *rows.time.tolist()])
    fig.update_layout(
        xaxis=dict(domain=[0, 1], anchor="y", title=texts[2], **time_ticks(last)),
        xaxis2=dict(domain=[0, 1], anchor="y2", matches="x", showticklabels=False, showgrid=False,
                    showline=False, ticks=""),
        yaxis=dict(domain=[(table_px + GAP_PX) / inner, 1], range=[0, 1.03], tickformat=".0%", title=texts[1]),
        yaxis2=dict(domain=[0, table_px / inner]),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", yref="paper"))
    fig.add_annotation(text="Numbers at risk (and events, censored so far)", xref="paper", yref="paper",
                       x=0, y=table_px / inner, yshift=6, xanchor="left", yanchor="bottom",
                       showarrow=False, font=dict(size=13))
    new_figure(title, fig=fig, height=inner + 125)
    add_note(fig, note, below_px=15)
    return fig


def incidence_table_figure(table: Any, kinds: Sequence[str], title: str, note: str) -> go.Figure:
    """Cumulative incidence of each kind of exit from a protected life table split by kind
    (analytics.publish.disclosure.LifeTable): a point per published day joined by straight lines,
    one panel per group. Takes the table's published days and incidences only."""
    groups = list(table.groups)
    fig, nrows, cols, title_px = _panels([f"{g} (n={table.n[g]:,})" for g in groups])
    new_figure(title, fig=fig, height=fig.layout.height)
    shown: set[str] = set()
    top = 0.0
    for i, g in enumerate(groups):
        cif, days = table.incidence(g), list(table.grids[g])
        if len(days) == 1:
            fig.add_annotation(text="Not published: fewer than<br>the threshold in some count",
                               xref="x domain", yref="y domain", x=0.5, y=0.5, showarrow=False,
                               font=dict(color=MUTED), row=i // cols + 1, col=i % cols + 1)
        for kind in kinds:
            label, hue, style = EXIT_STYLE.get(kind, (kind, MUTED, "solid"))
            top = max(top, *cif[kind])
            fig.add_trace(go.Scatter(
                x=days, y=cif[kind], mode="lines+markers", name=label, legendgroup=kind,
                showlegend=kind not in shown, line=dict(color=hue, width=2.5, dash=style), marker=dict(size=7),
                meta={"role": "incidence", "group": g, "exit_type": kind},
                hovertemplate="Day %{x:.0f}: %{y:.1%}<extra>" + f"{_esc(g)}: {label}" + "</extra>"),
                row=i // cols + 1, col=i % cols + 1)
            shown.add(kind)
    last = max(max(table.grids[g]) for g in groups)
    fig.update_xaxes(matches="x", **time_ticks(last or 365))  # nothing published: a year, not a lone "0"
    fig.update_yaxes(range=[0, min(1.0, max(top * 1.08 + 0.02, 0.1))], tickformat=".0%")  # no "1%, 1%" ticks
    fig.update_yaxes(title="Cumulative incidence", col=1)
    fig.update_xaxes(title="Days since enrollment", row=nrows)
    _panel_legend(fig, title_px)
    add_note(fig, note, below_px=15)
    return fig
