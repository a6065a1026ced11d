"""Download files for the charts of the Overview, Engagement, Cohorts, Sobriety and retention
(Cox) and Engagement and retention pages.

Each builder takes the analytics result its page already has and returns a ChartExport
(analytics.publish.exports): the table the chart shows, protected by analytics.publish.privacy, and the
page's own figure builder drawn FROM the protected values (NaN = hidden: a gap, not a zero),
with ChartMeta (title, definition, n, period, cutoff). The screen is unchanged.

Where a chart builder writes a total into its note or cannot take NaN, the fix is made here
on the copy that goes into the file (with analytics.charts.exports: renote, hide_small_in_text,
blank_hover...; filled counts), never in the chart builders.

The engagement exports import analytics.charts.engagement when called: it brings the models'
libraries (statsmodels, scipy.sparse), which the Overview, Engagement and Cohorts pages, whose
downloads live here too, do not need on their first load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analytics.analyses import activity
from analytics.analyses import kpis
from analytics.publish import privacy
from analytics.publish.spreadsheets import neutralise_frame
from analytics.charts.render import ChartMeta
from analytics.charts.exports import (
    bar_labels,
    blank_hover,
    drawn,
    figure_title,
    hide_small_in_text,
    renote,
    replace_message,
)
from analytics.analyses.cohorts import TRENDS_DEFINITION, CohortRetention
from analytics.charts.director import (
    MEETING_TYPE_LABELS,
    MODALITY_LABELS,
    TREND_MEASURES,
    adherence_figure,
    attendance_figure,
    attendance_gaps,
    caseload_figure,
    cohort_heatmap,
    cohort_trend_figure,
    weekday_figure,
    weekly_trends_figure,
)
from analytics.publish import cellkey, disclosure
from analytics.publish.exports import (
    ALL_ROW,
    ChartExport,
    TooFew,
    life_table,
    protect_cohorts,
    survival_meta,
)
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import Overview
from analytics.outcomes.period import Period
from analytics.outcomes.definitions import MISSING_LEVEL
from analytics.publish.privacy import DEFAULT_THRESHOLD, Protected
from analytics.analyses.survival import SurvivalAnalysis
from analytics.charts.survival import cox_figure, life_table_figure
from analytics.stats.survival import TIMES

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from analytics.analyses.engagement import EngagementAnalysis, Landmark
    from analytics.stats.result import Estimate

__all__ = ["adherence_export", "attendance_export", "caseload_export", "cohort_heatmap_export",
           "cohort_trends_export", "cox_export", "dose_response_export", "hazard_ratio_export",
           "landmark_km_export", "naive_vs_correct_export", "weekday_export",
           "weekly_trends_export"]

ESTIMATE = ["hr", "ci_lower", "ci_upper", "p"]
# --- helpers ------------------------------------------------------------------------------

def _shown(count: float | None, threshold: int) -> str:
    """A count as it may leave the app: '1,234', or '<11' for 1..threshold-1."""
    value = int(count or 0)
    return privacy.small_marker(threshold) if 0 < value < threshold else f"{value:,}"


def _cell(p: Protected, row: Hashable, column: Hashable) -> str:
    """A cell of a protected table as text: '1,234', '<11' or '*'."""
    value = p.display().loc[row, column]
    return value if isinstance(value, str) else f"{value:,}"


def _scope(period: Period, filters: Filters) -> str:
    return f"Period {period.describe()}; {filters.describe()}"


def _all_hidden(threshold: int) -> str:
    return f"Nothing to draw: every value here rests on fewer than {threshold} people and is hidden."


def _with_total(table: pd.DataFrame, label: Hashable = ALL_ROW) -> pd.DataFrame:
    """`table` with a total row of its numeric columns."""
    out = table.copy()
    out.loc[label] = table.sum(numeric_only=True)
    return out


def _hide_all(p: Protected, columns: list[str]) -> Protected:
    """Also hide every value of `columns` (derived values), as derived from a hidden count."""
    extra = pd.DataFrame(False, index=p.values.index, columns=p.values.columns)
    extra[columns] = ~p.suppressed[columns]
    return dataclasses.replace(p, values=p.values.mask(extra), derived=p.derived | extra)


def _protect_block(table: pd.DataFrame, counts: list[str], reference: str, total: str,
                   threshold: int, perturbed: tuple[str, ...] = ()) -> Protected:
    """Estimates against a reference row, with counts that add up to the `total` row: small counts
    hidden with complements, an estimate hidden with its row's counts, and all of them when the
    reference's counts are hidden."""
    p = privacy.protect(table, counts=counts, derived={c: counts for c in ESTIMATE}, total_row=total,
                        threshold=threshold, perturbed=perturbed)
    if reference in p.values.index and p.suppressed.loc[reference, counts].any():
        p = _hide_all(p, ESTIMATE)
    return p


def _empty_estimates(counts: list[str], threshold: int) -> Protected:
    return privacy.protect(pd.DataFrame(columns=["vs", *counts, *ESTIMATE]), counts=counts, threshold=threshold)


def _stack(parts: Mapping[Hashable, Protected], name: str, empty: Protected) -> Protected:
    """Several protected tables one under the other, keyed by `name` (each keeps its own relations)."""
    if not parts:
        return empty
    first = next(iter(parts.values()))
    frames = {f: pd.concat({k: getattr(p, f) for k, p in parts.items()}, names=[name])
              for f in ("values", "primary", "complementary", "derived")}
    return Protected(**frames, threshold=first.threshold, counts=first.counts, perturbed=first.perturbed)


# --- Overview -------------------------------------------------------------------------------

PERTURBED_TRENDS = ("active", "new_enrollments")  # the weekly counts of people (the others count activities)


def weekly_trends_export(trends: pd.DataFrame, ov: Overview, threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Weekly trends (kpis.weekly_trends): every weekly count of 1-10 hidden, a gap in its line.
    No totals are printed, so primary suppression is enough. Trends read with ``keyed=True``
    have their counts of people perturbed first (cell key method, as the report's), and then
    the note gives no true total of active participants (it would undo the noise)."""
    keyed = f"{PERTURBED_TRENDS[0]}_key" in trends.columns
    if keyed:
        trends = cellkey.perturb_columns(trends, PERTURBED_TRENDS)
    table = trends.set_index("week_start")
    p = privacy.protect(table, counts=list(kpis.TREND_COLUMNS), threshold=threshold,
                        perturbed=PERTURBED_TRENDS if keyed else ())
    fig = weekly_trends_figure(p.values.reset_index(), ov.period, ov.filters)
    n = ("n = participants active each week (counts of people perturbed)" if keyed else
         f"n = {_shown(ov.kpis['active'].current, threshold)} active participants in the period")
    meta = ChartMeta("Weekly trends", kpis.TREND_DEFINITION, n, _scope(ov.period, ov.filters), ov.cutoff)
    return ChartExport("weekly-trends", meta, p, fig)


# --- Engagement -------------------------------------------------------------------------------

def attendance_export(attendance: pd.DataFrame, period: Period, filters: Filters, cutoff: dt.date, *,
                      by: str = "meeting_type", freq: str = "week",
                      threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Meetings per week/month by meeting type or modality: buckets x categories with row and
    column totals, small cells hidden with complements; a hidden bar segment is a gap (NaN)."""
    labels = MEETING_TYPE_LABELS if by == "meeting_type" else MODALITY_LABELS
    wide = attendance.pivot_table(index="bucket", columns=by, values="meetings", aggfunc="sum", fill_value=0)
    keys = [k for k in labels if k in wide.columns] + sorted(set(wide.columns) - set(labels))
    names = {k: labels.get(k, k) for k in keys}
    wide = wide[keys].rename(columns=names).rename_axis(columns=None).astype("int64")
    wide["All meetings"] = wide.sum(axis=1)
    partial = attendance.groupby("bucket").partial.first()
    table = _with_total(wide, "Total").astype("float64")
    table.insert(0, "partial", partial.reindex(table.index).astype(object))
    cats = [*names.values(), "All meetings"]
    p = privacy.protect(table, counts=cats, sums=[(list(names.values()), "All meetings")] if names else [],
                        total_row="Total", threshold=threshold)
    body = p.values.drop(index="Total")
    long = pd.DataFrame([{"bucket": b, by: k, "meetings": body.loc[b, names[k]], "partial": bool(body.loc[b, "partial"])}
                         for b in body.index for k in keys], columns=["bucket", by, "meetings", "partial"])
    fig = attendance_figure(long, period, filters, by=by, freq=freq)
    fig = attendance_gaps(fig, {(pd.Timestamp(b), names[k]): body.loc[b, names[k]] for b in body.index for k in keys})
    total = _cell(p, "Total", "All meetings")
    fig = renote(fig, r"Total: [\d,]+ meetings", f"Total: {total} meetings")
    meta = ChartMeta(figure_title(fig), activity.DEFINITIONS["attendance"].format(freq=freq),
                     f"n = {total} meetings attended", _scope(period, filters), cutoff)
    return ChartExport(f"attendance-{by}-{freq}", meta, p, fig)


def weekday_export(weekday: pd.DataFrame, period: Period, filters: Filters, cutoff: dt.date,
                   threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Activity by day of the week: counts per weekday with a total row (the shares add up to it),
    small counts hidden with complements, their per-day averages and shares hidden too."""
    kinds = ["meetings", "checkins", "mentoring"]
    table = _with_total(weekday.drop(columns="weekday").set_index("day_name"), "All days")
    for k in kinds:
        table.loc["All days", f"{k}_per_day"] = table.loc["All days", k] / table.loc["All days", "days_in_period"]
        table.loc["All days", f"{k}_share"] = 1.0 if table.loc["All days", k] else np.nan
    derived = {f"{k}_{what}": [k] for k in kinds for what in ("per_day", "share")}
    p = privacy.protect(table, counts=kinds, derived=derived, total_row="All days", threshold=threshold)
    body = p.values.drop(index="All days")
    fig = weekday_figure(body.reset_index().fillna({k: 0 for k in kinds}), period, filters)  # it sums the counts
    if not drawn(fig) and table.loc["All days", kinds].any():
        fig = replace_message(fig, _all_hidden(threshold))
    fig = blank_hover(fig, [{0: body[k].isna().to_numpy(), 2: body[f"{k}_share"].isna().to_numpy()} for k in kinds])
    words = {"meetings": "meetings attended", "checkins": "check-ins", "mentoring": "mentoring sessions"}
    n = ", ".join(f"{_cell(p, 'All days', k)} {words[k]}" for k in kinds)
    meta = ChartMeta(figure_title(fig), activity.DEFINITIONS["weekday"], f"n = {n}", _scope(period, filters), cutoff)
    return ChartExport("weekday-pattern", meta, p, fig)


def adherence_export(distribution: pd.DataFrame, period: Period, filters: Filters, cutoff: dt.date,
                     threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Participants per check-in adherence band with a total row; small bands hidden with
    complements, their shares hidden; the note's n is the protected total. A distribution read
    with ``keyed=True`` (as the Engagement page does) has its counts perturbed first (cell key
    method; the total with everyone's noise) and its shares computed from the perturbed counts,
    so no true count can be worked back from a share."""
    keyed = "participants_key" in distribution.columns
    if keyed:  # exact integers: the total row's float sum would round them (its own key is made from them)
        distribution = distribution.astype({"participants_key": object})
    table = _with_total(distribution.set_index("band"))
    if keyed:
        table = cellkey.perturb_columns(table, ["participants"], total_row=ALL_ROW)
        total = table.loc[ALL_ROW, "participants"]
        table["share"] = table.participants / total if total else np.nan
    table.loc[ALL_ROW, "share"] = 1.0 if table.loc[ALL_ROW, "participants"] else np.nan
    p = privacy.protect(table, counts=["participants"], derived={"share": ["participants"]}, total_row=ALL_ROW,
                        threshold=threshold, perturbed=("participants",) if keyed else ())
    body = p.values.drop(index=ALL_ROW)
    fig = adherence_figure(body.reset_index(), period, filters)
    total = _cell(p, ALL_ROW, "participants")
    if drawn(fig):
        possible = activity.possible_bands(period)  # an impossible band keeps "not possible in this period"
        fig = bar_labels(fig, [fig.data[0].text[i] if b not in possible else "" if np.isnan(s) else f"{s:.0%}"
                               for i, (b, s) in enumerate(zip(body.index, body.share))])
        fig = renote(fig, r"n=[\d,]+ participants", f"n={total} participants")
    elif table.loc[ALL_ROW, "participants"]:
        fig = renote(replace_message(fig, _all_hidden(threshold)), r"n=[\d,]+ participants", f"n={total} participants")
    meta = ChartMeta(figure_title(fig), activity.DEFINITIONS["adherence"], f"n = {total} participants",
                     _scope(period, filters), cutoff)
    return ChartExport("checkin-adherence", meta, p, fig)


def caseload_export(caseloads: pd.DataFrame, period: Period, filters: Filters, cutoff: dt.date,
                    threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Mentor caseloads, one row per (pseudonymous) mentor with a total row: active mentees and
    sessions of 1-10 hidden with complements, rates built on them hidden; a mentor whose
    caseload is hidden is not drawn. Caseloads read with ``keyed=True`` (as the Engagement page
    does) have each mentor's active mentees and the total of mentor-mentee pairs perturbed first
    (cell key method; the total's key is the sum of the mentors'), and the rates computed from
    the published counts."""
    rates = ["sessions_per_mentee", "sessions_per_mentee_per_month"]
    keyed = "active_mentees_key" in caseloads.columns
    if keyed:  # exact integers: the total row's float sum would round them (its own key is made from them)
        caseloads = caseloads.astype({"active_mentees_key": object})
    table = _with_total(caseloads.set_index("mentor_id"), "All mentors").astype({"programs": object, "sites": object})
    if keyed:
        table = cellkey.perturb_columns(table, ["active_mentees"], total_row="All mentors")
        table["sessions_per_mentee"] = table.sessions / table.active_mentees
        table["sessions_per_mentee_per_month"] = table.sessions_per_mentee / (period.days / activity.MONTH_DAYS)
    total = table.loc["All mentors"]
    table.loc["All mentors", rates] = [total.sessions / total.active_mentees if total.active_mentees else np.nan,
                                       total.sessions / total.active_mentees / (period.days / activity.MONTH_DAYS)
                                       if total.active_mentees else np.nan]
    table.loc["All mentors", ["programs", "sites"]] = ""
    p = privacy.protect(table, counts=["active_mentees", "sessions"], threshold=threshold, total_row="All mentors",
                        derived={r: ["active_mentees", "sessions"] for r in rates},
                        perturbed=("active_mentees",) if keyed else ())
    body = p.values.drop(index="All mentors")
    fig = caseload_figure(body.reset_index(), period, filters)
    mentors = _shown(len(body), threshold)
    fig = renote(fig, r"[\d,]+ mentors, [\d,]+ mentor-mentee pairs",
                  f"{mentors} mentors, {_cell(p, 'All mentors', 'active_mentees')} mentor-mentee pairs")
    if len(body) and body.active_mentees.isna().all():
        fig = replace_message(fig, f"Caseloads hidden: every mentor has fewer than {threshold} active mentees "
                            "(or would reveal one who has).")
    meta = ChartMeta(figure_title(fig), activity.DEFINITIONS["caseload"], f"n = {mentors} mentors",
                     _scope(period, filters), cutoff)
    return ChartExport("mentor-caseloads", meta, p, fig,
                       notes=[(f"Mentor IDs are pseudonymous. Mentors with fewer than {threshold} active "
                               "mentees (or whose numbers would reveal such a mentor's) are listed with their "
                               "numbers hidden and are not drawn.")])


# --- Cohorts -------------------------------------------------------------------------------

def cohort_heatmap_export(retention: CohortRetention, threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Retention by enrollment cohort (exports.protect_cohorts): cohorts of fewer than the
    threshold left out, a month's share hidden where fewer than the threshold are followed; n and
    numbers at risk perturbed first when ``retention`` was read with ``keyed=True`` (as the Cohorts
    page does), and the note's n is then the sum of the published n."""
    safe, p = protect_cohorts(retention, threshold)
    fig = cohort_heatmap(safe)
    if safe.empty and not retention.empty:
        fig = replace_message(fig, _all_hidden(threshold))
    left_out = len(retention.n) - len(safe.n)
    n = f"n = {int(safe.n.sum()):,} participants in {len(safe.n)} cohorts shown" + (
        f" ({left_out} cohorts of fewer than {threshold} left out)" if left_out else "")
    definition = retention.definition() + (
        " In this file the shares are actuarial (Cutler-Ederer) over the months, computed from the perturbed "
        "numbers followed, drop-outs and censorings (cell key method); month 0 is 100%."
        if retention.n_key is not None else "")
    meta = ChartMeta(figure_title(fig), definition, n, f"Cohorts by {retention.by}; "
                     f"{retention.filters.describe()}", retention.cutoff)
    return ChartExport(f"cohort-retention-{retention.by}", meta, p, fig)


MEAN_DECIMALS = 1  # a published mean's digits: at 1 decimal no denominator of 9 or more can be read from it


def cohort_trends_export(trends: pd.DataFrame, measure: str, by: str, filters: Filters, cutoff: dt.date,
                         threshold: int = DEFAULT_THRESHOLD) -> ChartExport:
    """Reported use / craving / mood per cohort and month: participants (and those reporting use
    or not, or those with a value) of 1-10 hidden, and the share or mean built on them. Trends
    read with ``keyed=True`` (as the Cohorts page does for the download) have every count of
    people perturbed first (cell key method) and the share of reported use computed from the
    published counts, so no true count can be worked back from it. Means are rounded to
    MEAN_DECIMALS: their full digits could give away the number of people averaged."""
    if measure not in TREND_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(TREND_MEASURES)}")
    t = trends.set_index(["cohort", "month"])
    counts = ["cohort_n", "participants", *(["reported_use", "no_use"] if measure == "used_share"
                                             else [f"{measure}_n"])]
    keyed = "participants_key" in t.columns
    table = t[[*counts, *(f"{c}_key" for c in counts if keyed), "complete"]].copy()
    if keyed:
        table = cellkey.perturb_columns(table, counts)
    if measure == "used_share":
        table[measure] = table.reported_use / table.participants
    else:
        table[measure] = t[measure].round(MEAN_DECIMALS)
    sums = [(["reported_use", "no_use"], "participants")] if measure == "used_share" else []
    p = privacy.protect(table, counts=counts, sums=sums, derived={measure: counts[1:]}, threshold=threshold,
                        perturbed=tuple(counts) if keyed else ())
    fig = cohort_trend_figure(p.values.reset_index(), measure, by, filters, min_participants=threshold)
    sizes = p.values.cohort_n.groupby(level="cohort").first()
    shown = sizes.dropna()
    n = (f"n={int(shown.sum()):,} participants in {len(shown)} cohorts of {threshold} or more"
         + (f" ({len(sizes) - len(shown)} smaller cohorts left out)" if len(shown) < len(sizes) else ""))
    fig = renote(fig, r"n=[\d,]+ participants in \d+ cohorts", n)
    if not drawn(fig) and len(trends):
        fig = replace_message(fig, _all_hidden(threshold))
    meta = ChartMeta(figure_title(fig), TRENDS_DEFINITION, n.replace("n=", "n = ", 1), f"Cohorts by {by}; "
                     f"{filters.describe()}", cutoff)
    return ChartExport(f"cohort-trends-{measure}-{by}", meta, p, fig)


# --- Sobriety and retention: Cox -------------------------------------------------------------

def _cox_block(frame: pd.DataFrame, term: str, reference: str, terms: list,
               secret: bytes | None = None) -> pd.DataFrame:
    """One covariate: participants per level (as fit_cox names levels), the HR of each level in the
    model against the reference (1 for the reference, blank for a level left out), and a total row.
    With ``secret`` every n is perturbed (cellkey.perturb of the level's participants; the total's
    of everyone)."""
    levels = frame[term].astype(object).where(frame[term].notna(), MISSING_LEVEL).astype(str)
    sizes = levels.value_counts()
    total = int(sizes.sum())
    if secret is not None:
        ids = frame.participant_id.astype(str)
        sizes = pd.Series({lv: cellkey.perturb(secret, ids[levels == lv]) for lv in sizes.index}, dtype="int64")
        total = cellkey.perturb(secret, ids)
    fitted = {t.level: (t.estimate, *t.ci, t.p) for t in terms}
    rows = [{"level": level, "vs": reference, "n": n,
             **dict(zip(ESTIMATE, (1.0, np.nan, np.nan, np.nan) if level == reference else
                        fitted.get(level, (np.nan,) * 4)))} for level, n in sizes.sort_index().items()]
    rows.append({"level": ALL_LEVELS, "vs": "", "n": total, **dict.fromkeys(ESTIMATE, np.nan)})
    return pd.DataFrame(rows).set_index("level")


ALL_LEVELS = "(all levels)"


def cox_export(analysis: SurvivalAnalysis, threshold: int = DEFAULT_THRESHOLD,
               secret: bytes | None = None) -> ChartExport:
    """The Cox forest plot: per covariate, participants per level with a total row (so a hidden
    level cannot be worked out from n), the HR of a hidden level left out of the chart, and
    every HR of a covariate whose reference level is hidden. With the store's ``secret`` (as the
    Survival page passes it, as for km_export) every n is perturbed first (cell key method)."""
    privacy.check_threshold(threshold)
    d = analysis.durations
    if d.n < threshold:
        raise TooFew(f"fewer than {threshold} participants in this selection: nothing can be exported")
    cox = analysis.cox
    terms = cox.terms if cox is not None else []
    parts = {term: _protect_block(_cox_block(d.frame, term, ref, [t for t in terms if t.term == term], secret),
                                  ["n"], ref, ALL_LEVELS, threshold, ("n",) if secret is not None else ())
             for term, ref in (cox.references.items() if cox is not None else [])}
    p = _stack(parts, "covariate", _empty_estimates(["n"], threshold))
    kept = [t for t in terms if not p.suppressed["hr"].get((t.term, t.level), True)]
    safe = analysis if cox is None else dataclasses.replace(analysis, cox=dataclasses.replace(cox, terms=kept))
    fig = hide_small_in_text(cox_figure(safe), threshold)
    if terms and not kept:
        fig = replace_message(fig, _all_hidden(threshold))
    meta = survival_meta(analysis, figure_title(fig), "Cox proportional-hazards model (Efron ties): hazard ratio of each "
                         "level against the reference level, with 95% CI.")
    if secret is not None:  # the published (perturbed) counts, never the true ones, in the file and the chart
        ids = d.frame.participant_id.astype(str)
        n, events = cellkey.perturb(secret, ids), cellkey.perturb(secret, ids[d.frame.event.astype(bool)])
        fig = renote(fig, r"n=[\d,]+, events=[\d,]+", f"n={n:,}, events={_shown(events, threshold)}")
        meta = dataclasses.replace(meta, n=f"n = {n:,} participants")
    note = (f"Levels with fewer than {threshold} participants (or whose numbers would reveal such a level's), and "
            f"every level of a covariate whose reference level is so hidden, are left out of the chart.")
    return ChartExport(f"{analysis.outcome}-cox", meta, p, fig, notes=[note])


# --- Engagement and retention ----------------------------------------------------------------

PERSON_WEEKS_NOTE = ("Person-weeks count weeks of follow-up, not people: they are not perturbed (only hidden "
                     "when fewer than {t}).")


def _engagement_meta(analysis: EngagementAnalysis, fig: go.Figure, definition: str, filters: Filters,
                     cutoff: dt.date, threshold: int) -> ChartMeta:
    n = (f"n = {_shown(analysis.n, threshold)} participants, {_shown(analysis.events, threshold)} events, "
         f"{_shown(analysis.person_weeks, threshold)} person-weeks")
    return ChartMeta(figure_title(fig), definition, n, filters.describe().capitalize(), cutoff)


class _Counter:
    """Counts of subsets of some participants as published: the true count, or with ``secret``
    cellkey.perturb of the members, each member's record key computed once (a download of a
    100,000-person model hashes each id once, not once per cell)."""

    def __init__(self, ids: np.ndarray | pd.Series, secret: bytes | None):
        self.size = len(ids)
        self.keys = None if secret is None else cellkey.record_keys(secret, ids)

    def __call__(self, members: np.ndarray | pd.Series | None = None) -> int:
        """The published count of the participants where ``members`` (a boolean mask) is true; None: all."""
        mask = np.ones(self.size, dtype=bool) if members is None else np.asarray(members, dtype=bool)
        return int(mask.sum()) if self.keys is None else cellkey.published(self.keys[mask])


def _published_model(analysis: EngagementAnalysis, secret: bytes | None) -> EngagementAnalysis:
    """The analysis with its model's n and events as published (with ``secret``: perturbed from
    the participants behind them), so the figures' notes and the file's meta print no true count."""
    if secret is None:
        return analysis
    count = _Counter(analysis.participant_ids, secret)
    return dataclasses.replace(analysis, n=count(), events=count(analysis.had_event))


def _published_landmark(lm: Landmark, people: pd.DataFrame, count: _Counter) -> Landmark:
    """The landmark with its n and events as published (``count``: a _Counter of its ``people``)."""
    return dataclasses.replace(lm, n=count(), events=count(people.event))


def _engagement_notes(secret: bytes | None, threshold: int, *notes: str) -> list[str]:
    """The file's notes, and with ``secret`` that person-weeks (not people) are not perturbed."""
    return [*notes, *([PERSON_WEEKS_NOTE.format(t=threshold)] if secret is not None else [])]


def _perturbed(secret: bytes | None) -> tuple[str, ...]:
    return ("n", "events") if secret is not None else ()


def _term_rows(terms: list[Estimate], counts: dict[str, float]) -> list[dict]:
    return [{"engagement": t.term, **counts, "hr": t.estimate, "ci_lower": t.ci[0], "ci_upper": t.ci[1],
             "p": t.p, "per": t.unit} for t in terms]


def _protect_estimates(table: pd.DataFrame, counts: list[str], threshold: int,
                       perturbed: tuple[str, ...] = ()) -> Protected:
    return privacy.protect(table, counts=counts, derived={c: counts for c in ESTIMATE}, threshold=threshold,
                           perturbed=perturbed)


def _model_counts(analysis: EngagementAnalysis) -> dict[str, float]:
    return {"n": analysis.n, "events": analysis.events, "person_weeks": analysis.person_weeks}


def hazard_ratio_export(analysis: EngagementAnalysis, filters: Filters, cutoff: dt.date,
                        threshold: int = DEFAULT_THRESHOLD, secret: bytes | None = None) -> ChartExport:
    """The time-varying Cox hazard ratios: a row (all rows: one model) is hidden and not drawn
    when its participants, events or person-weeks are fewer than the threshold. With the store's
    ``secret`` (as the page passes it) n and events are perturbed first (cell key method)."""
    from analytics.charts import engagement as engagement_charts  # see the module docstring
    analysis = _published_model(analysis, secret)
    table = pd.DataFrame(_term_rows(analysis.time_varying, _model_counts(analysis)),
                         columns=["engagement", "n", "events", "person_weeks", *ESTIMATE, "per"])
    p = _protect_estimates(table.set_index("engagement"), ["n", "events", "person_weeks"], threshold,
                           _perturbed(secret))
    kept = [t for t, hidden in zip(analysis.time_varying, p.suppressed["hr"]) if not hidden]
    fig = engagement_charts.hazard_ratio_figure(dataclasses.replace(analysis, time_varying=kept))
    fig = hide_small_in_text(fig, threshold)
    if analysis.time_varying and not kept:
        fig = replace_message(fig, _all_hidden(threshold))
    meta = _engagement_meta(analysis, fig, "Time-varying Cox model (Efron ties) on the person-week table: hazard "
                            "ratio per one more in-person group meeting, online community meeting (type "
                            "online_community or modality online), check-in or mentoring session in the previous "
                            "week, with 95% CI.", filters, cutoff, threshold)
    return ChartExport(f"{analysis.outcome}-engagement-hazard-ratios", meta, p, fig,
                       notes=_engagement_notes(secret, threshold))


def naive_vs_correct_export(analysis: EngagementAnalysis, filters: Filters, cutoff: dt.date,
                            threshold: int = DEFAULT_THRESHOLD, secret: bytes | None = None) -> ChartExport:
    """The naive (biased) and corrected hazard ratios side by side, hidden (and, with ``secret``,
    n and events perturbed) as in hazard_ratio_export."""
    from analytics.charts import engagement as engagement_charts  # see the module docstring
    analysis = _published_model(analysis, secret)
    counts = _model_counts(analysis)
    rows = [{"estimate": "naive (biased)", **r} for r in _term_rows(analysis.naive, {**counts, "person_weeks": np.nan})]
    rows += [{"estimate": "corrected", **r} for r in _term_rows(analysis.time_varying, counts)]
    table = pd.DataFrame(rows, columns=["estimate", "engagement", "n", "events", "person_weeks", *ESTIMATE, "per"])
    sds = {"naive (biased)": analysis.exposure_sd.get("naive", {}),
           "corrected": analysis.exposure_sd.get("time_varying", {})}
    table["sd"] = [sds[e].get(g, np.nan) for e, g in zip(table.estimate, table.engagement)]
    for col in ("hr", "ci_lower", "ci_upper"):
        table[f"{col}_per_sd"] = table[col] ** table["sd"]
    model_counts = ["n", "events", "person_weeks"]
    p = privacy.protect(table.set_index(["estimate", "engagement"]), counts=model_counts, threshold=threshold,
                        derived={c: model_counts for c in [*ESTIMATE, "sd", "hr_per_sd", "ci_lower_per_sd",
                                                           "ci_upper_per_sd"]}, perturbed=_perturbed(secret))
    hidden = list(p.suppressed["hr"])
    k = len(analysis.naive)
    safe = dataclasses.replace(analysis, naive=[t for t, h in zip(analysis.naive, hidden[:k]) if not h],
                               time_varying=[t for t, h in zip(analysis.time_varying, hidden[k:]) if not h])
    fig = hide_small_in_text(engagement_charts.naive_vs_correct_figure(safe), threshold)
    if (analysis.naive or analysis.time_varying) and not (safe.naive or safe.time_varying):
        fig = replace_message(fig, _all_hidden(threshold))
    meta = _engagement_meta(analysis, fig, "Cox models: the naive hazard ratio for total engagement over the whole "
                            "follow-up, BIASED by immortal time, beside the corrected one for the previous week's "
                            "engagement, both per one standard deviation of their exposure (sd), with 95% CI; the "
                            "table also gives them per one meeting (check-in, session).", filters, cutoff, threshold)
    return ChartExport(f"{analysis.outcome}-naive-vs-corrected", meta, p, fig,
                       notes=_engagement_notes(secret, threshold))


def _reference_tier(lm: Landmark) -> str:
    """'1-3 meetings': the tier the landmark's HRs compare with (the lowest tier anyone is in)."""
    return f"{lm.tiers[0].term.split(' vs ', 1)[1] if lm.tiers else next(iter(lm.curves), '')} meetings"


def _tier_counts(lm: Landmark, people: pd.DataFrame, count: _Counter) -> dict[str, tuple[int, int]]:
    """Each tier's (participants, events), and the total's ('All tiers': everyone in the landmark),
    as published (``count``: a _Counter of the landmark's ``people``)."""
    tiers = {str(t): (people.tier == t).to_numpy() for t in lm.curves} | {"All tiers": np.ones(len(people), bool)}
    event = people.event.to_numpy()
    return {t: (count(mask), count(mask & event)) for t, mask in tiers.items()}


def _tier_table(lm: Landmark, people: pd.DataFrame, count: _Counter) -> pd.DataFrame:
    """One landmark's tiers: participants, events (as ``count`` publishes them), HR against the
    reference tier; and a total row."""
    ref = _reference_tier(lm).removesuffix(" meetings")
    by_tier = {t.term.split(" meetings vs ", 1)[0]: t for t in lm.tiers}
    counts = _tier_counts(lm, people, count)
    rows = []
    for tier in lm.curves:
        t = by_tier.get(tier)
        est = (1.0 if lm.tiers else np.nan, np.nan, np.nan, np.nan) if tier == ref else (
            (t.estimate, *t.ci, t.p) if t is not None else (np.nan,) * 4)
        rows.append({"tier": f"{tier} meetings", "vs": f"{ref} meetings", "n": counts[tier][0],
                     "events": counts[tier][1], **dict(zip(ESTIMATE, est))})
    rows.append({"tier": "All tiers", "vs": "", "n": counts["All tiers"][0], "events": counts["All tiers"][1],
                 **dict.fromkeys(ESTIMATE, np.nan)})
    return pd.DataFrame(rows).set_index("tier")


def dose_response_export(analysis: EngagementAnalysis, filters: Filters, cutoff: dt.date,
                         threshold: int = DEFAULT_THRESHOLD, secret: bytes | None = None) -> ChartExport:
    """Landmark dose-response: per landmark day, each meetings tier's participants and events
    (with the day's total, so complements are hidden too); a tier's HR is hidden and not drawn
    when its counts are hidden, and a whole day's when its reference tier's are. With the store's
    ``secret`` every n and events (the total's from everyone in the landmark) is perturbed first;
    the figure's note gives each day's total as the table publishes it."""
    from analytics.charts import engagement as engagement_charts  # see the module docstring
    people = {lm.day: analysis.landmark_people(lm) for lm in analysis.landmarks}
    counters = {day: _Counter(p.participant_id, secret) for day, p in people.items()}
    parts = {f"day {lm.day}": _protect_block(_tier_table(lm, people[lm.day], counters[lm.day]), ["n", "events"],
                                             _reference_tier(lm), "All tiers", threshold, _perturbed(secret))
             for lm in analysis.landmarks}
    p = _stack(parts, "landmark", _empty_estimates(["n", "events"], threshold))

    def published(lm: Landmark) -> Landmark:  # its counts as published, its hidden tiers left out
        hidden = p.suppressed["hr"]
        return dataclasses.replace(_published_landmark(lm, people[lm.day], counters[lm.day]), tiers=[
            t for t in lm.tiers if not hidden.get((f"day {lm.day}", t.term.split(" vs ", 1)[0]), True)])

    safe = dataclasses.replace(_published_model(analysis, secret),
                               landmarks=[published(lm) for lm in analysis.landmarks])
    fig = engagement_charts.dose_response_figure(safe)
    for lm in analysis.landmarks:  # a day's total as the table shows it ('<11', '*' where hidden)
        row = (f"day {lm.day}", "All tiers")
        fig = renote(fig, rf"Day {lm.day}: n=[\d,]+, events=[\d,]+\.",
                     f"Day {lm.day}: n={_cell(p, row, 'n')}, events={_cell(p, row, 'events')}.")
    fig = hide_small_in_text(fig, threshold)
    if any(lm.tiers for lm in analysis.landmarks) and not any(lm.tiers for lm in safe.landmarks):
        fig = replace_message(fig, _all_hidden(threshold))
    meta = _engagement_meta(safe, fig, "Landmark Cox models: among those still in on the landmark day, hazard "
                            "ratio of each meetings tier (meetings before the day) against the lowest tier, with "
                            "95% CI.", filters, cutoff, threshold)
    note = (f"Tiers with fewer than {threshold} participants or events (or whose numbers would reveal such a tier's),"
            f" and every tier of a day whose reference tier is so hidden, are not drawn.")
    return ChartExport(f"{analysis.outcome}-dose-response", meta, p, fig,
                       notes=_engagement_notes(secret, threshold, note))


def landmark_km_export(analysis: EngagementAnalysis, day: int, filters: Filters, cutoff: dt.date,
                       threshold: int = DEFAULT_THRESHOLD, secret: bytes | None = None) -> ChartExport:
    """Survival after a landmark day by meetings tier, protected like km_export: a life table
    (analytics.publish.disclosure) of the landmark's people whose every curve point, number at
    risk and table cell rests on counts of 0 or at least the threshold, tiers hidden with their
    complements. With the store's ``secret`` every count is perturbed first (as km_export's), and
    the note's n and events are the published ones."""
    from analytics.charts import engagement as engagement_charts  # see the module docstring
    lm = next((m for m in analysis.landmarks if m.day == day), None)
    if lm is None:
        raise TooFew(f"no landmark analysis at day {day} for this selection: nothing can be exported")
    people = analysis.landmark_people(lm)
    count = _Counter(people.participant_id, secret)
    groups = (people.tier.astype(str) + " meetings").to_numpy(object)
    lt = life_table(people.days_after.to_numpy(), people.event.to_numpy(), groups, threshold, count.keys)
    p = disclosure.protected_table(lt, TIMES)
    fig = life_table_figure(lt, engagement_charts.landmark_title(analysis.outcome, day), analysis.outcome,
                            max(TIMES), "")
    fig.update_xaxes(title_text=f"Days after day {day} (the landmark)", selector=dict(anchor="y"))
    shown = _published_landmark(lm, people, count)
    meta = ChartMeta(figure_title(fig), f"Landmark at day {day}: participants still in on day {day}, grouped by the "
                     f"meetings they attended before it, followed from day {day}; not adjusted. {lt.method()}",
                     f"n = {_shown(shown.n, threshold)} participants, {_shown(shown.events, threshold)} events after "
                     f"day {day}", filters.describe().capitalize(), cutoff)
    return ChartExport(f"{analysis.outcome}-landmark-{day}", meta, p, fig, life_table=lt)
