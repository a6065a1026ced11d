"""What leaves the app as a file: a chart and its table, both built from protected numbers.

Why one place: a chart image, its CSV and its XLSX must hide the same cells, state the
same method and carry the same title, definition, n, period and cutoff. Each export
pairs a figure drawn from the *protected* data (analytics.publish.privacy) with that data's
display table; the page, the report and the CLI all go through here.

Survival results are protected by dropping groups whose size is hidden (a curve would
show it), stopping each curve and its numbers-at-risk where fewer than the threshold
remain at risk, and hiding the small events/censored counts under the curve.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analytics.access import audit
from analytics.charts import render as chart_export
from analytics.publish import cellkey, disclosure, privacy
from analytics.publish import spreadsheets
from analytics.stats import survival
from analytics.charts.exports import hide_small_in_text, message_figure  # the first re-exported (__all__)
from analytics.charts.render import ChartMeta
from analytics.analyses.cohorts import CohortRetention
from analytics.publish.disclosure import LifeTable
from analytics.publish.privacy import Protected
from analytics.store.connection import Store
from analytics.stats.survival import TIMES, KaplanMeier
from analytics.analyses.survival import SurvivalAnalysis

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["FORMATS", "MIME", "ChartExport", "TooFew", "incidence_export", "incidence_life_table", "km_export", "protect_cohorts",
           "hide_small_in_text", "km_life_table", "life_table", "protect_survival", "refusal", "survival_meta",
           "survival_table"]

FORMATS = ("png", "svg", "pdf", "csv", "xlsx")
MIME = {**chart_export.MIME, "csv": "text/csv",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
ALL_ROW = "All"


class TooFew(ValueError):
    """Fewer people than the threshold in the whole selection: nothing can be exported."""


@dataclass
class ChartExport:
    """A figure drawn from protected data, that data's table, and what the files must say."""

    name: str
    meta: ChartMeta
    table: Protected
    figure: go.Figure | None = None
    notes: list[str] = field(default_factory=list)
    life_table: LifeTable | None = None  # the protected counts behind a survival chart (for the auditor)

    def lines(self) -> list[str]:
        """The text every file carries: caption, extra notes, the suppression method."""
        return [*self.meta.caption_lines(), *self.notes, self.table.method()]

    def data(self, fmt: str) -> bytes:
        """The file's bytes: png/svg/pdf (the figure) or csv/xlsx (the table)."""
        if fmt == "csv":
            return spreadsheets.csv_bytes(self.table.display(), notes=self.lines(), index=True)
        if fmt == "xlsx":
            return spreadsheets.xlsx_bytes({self.meta.title: self.table.display()}, notes=self.lines(),
                                           index=True)
        if fmt not in chart_export.FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        if self.figure is None:
            raise ValueError(f"{self.name} has a table only")
        method = _short_method(self.table.threshold, self.life_table is not None, bool(self.table.perturbed))
        return chart_export.export(self.figure, fmt, dataclasses.replace(
            self.meta, definition=f"{self.meta.definition.rstrip('. ')}. {method}"))

    def filename(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        return chart_export.filename(self.meta, "png").removesuffix(".png") + f".{fmt}"

    def formats(self) -> tuple[str, ...]:
        return FORMATS if self.figure is not None else ("csv", "xlsx")

    def save(self, store: Store, fmt: str, *, user: str | None = None, filters: object = None) -> bytes:
        """The file's bytes, recorded in the audit log (what, format, filters, user)."""
        data = self.data(fmt)
        audit.record(store, "export", self.filename(fmt), user=user, chart=self.name, format=fmt,
                     filters=filters, period=self.meta.period)
        return data


def _short_method(threshold: int, curves: bool = False, perturbed: bool = False) -> str:
    """The method in one line under an image: what the reader of a chart needs (curves only for
    survival charts; the noise only when counts of people were perturbed)."""
    out = f"Counts of 1-{threshold - 1} shown as {privacy.small_marker(threshold)}"
    if curves:
        out += f"; curves stop where fewer than {threshold} remain at risk"
    if perturbed:
        out += "; counts of people perturbed by up to 2 (cell key method)"
    return out + "."


# --- survival -------------------------------------------------------------------------

def _at_risk(km: KaplanMeier, t: float) -> int:
    """Participants still followed at day t (time >= t)."""
    later = km.table[km.table.time >= t]
    return int(later.n_risk.iloc[0]) if not later.empty else 0


def survival_table(a: SurvivalAnalysis, times: tuple[int, ...] = TIMES) -> pd.DataFrame:
    """Per group: n, events, median (95% CI), and per time the survival and the number at risk;
    with an "All" row of the counts when there are several groups (so hidden cells get
    complements)."""
    rows = []
    for g in a.groups:
        km = a.curves[g.group]
        row = {"group": g.group, "n": g.n, "events": g.events, "median_days": g.median,
               "median_lower": g.median_ci[0], "median_upper": g.median_ci[1]}
        for t in times:
            row[f"survival_{t}"] = g.survival.get(t, km.at(t))
            row[f"at_risk_{t}"] = _at_risk(km, t)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("group")
    if len(table) > 1:
        frame = a.durations.frame
        km = survival.kaplan_meier(frame.days.to_numpy(), frame.event.to_numpy())
        overall = survival.summarize_group(ALL_ROW, km, times)
        total = {c: table[c].sum() for c in ["n", "events", *(f"at_risk_{t}" for t in times)]}
        total |= {"median_days": overall.median, "median_lower": overall.median_ci[0],
                  "median_upper": overall.median_ci[1]}
        total |= {f"survival_{t}": overall.survival[t] for t in times}
        table.loc[ALL_ROW] = pd.Series(total)
    return table


def _protect_survival_table(a: SurvivalAnalysis, threshold: int, times: tuple[int, ...]) -> Protected:
    table = survival_table(a, times)
    derived = {c: ["n", "events"] for c in ("median_days", "median_lower", "median_upper")}
    derived |= {f"survival_{t}": ["n", f"at_risk_{t}"] for t in times}
    counts = ["n", "events", *(f"at_risk_{t}" for t in times)]
    return privacy.protect(table, counts=counts, derived=derived,
                           total_row=ALL_ROW if ALL_ROW in table.index else None, threshold=threshold)


def _truncate(km: KaplanMeier, threshold: int) -> KaplanMeier:
    return dataclasses.replace(km, table=km.table[km.table.n_risk >= threshold].reset_index(drop=True))


def _protect_risk(risk: pd.DataFrame, sizes: dict[str, int], threshold: int) -> pd.DataFrame:
    """Numbers at risk of the kept groups, stopped below the threshold; events and censored
    counts shown as "<11"/"*" where small (they add up to n with the number at risk)."""
    kept = risk[risk.group.isin(list(sizes)) & (risk.at_risk >= threshold)].copy()
    if kept.empty:
        return kept
    kept["n"] = kept.group.map(sizes)
    p = privacy.protect(kept.reset_index(drop=True), counts=["at_risk", "events", "censored", "n"],
                        sums=[(["at_risk", "events", "censored"], "n")], threshold=threshold)
    shown = p.display()
    return shown.drop(columns="n")


def protect_survival(a: SurvivalAnalysis, threshold: int = privacy.DEFAULT_THRESHOLD,
                     times: tuple[int, ...] = TIMES) -> tuple[SurvivalAnalysis, Protected]:
    """A copy of `a` safe to draw in an export, and its protected summary table.

    Groups whose n is hidden are left out of the figure; curves, cumulative incidence and
    numbers at risk stop where fewer than `threshold` remain at risk; medians reached
    after that point are not drawn. Cox results are not carried over.
    """
    privacy.check_threshold(threshold)
    if a.durations.n < threshold:
        raise TooFew(f"fewer than {threshold} participants in this selection: nothing can be exported")
    table = _protect_survival_table(a, threshold, times)
    hidden = table.suppressed["n"]
    keep = [g for g in a.curves if g in hidden.index and not hidden[g]]
    curves = {g: _truncate(a.curves[g], threshold) for g in keep}
    groups = []
    for s in a.groups:
        if s.group in curves:
            last = curves[s.group].table.time.max() if not curves[s.group].table.empty else 0
            if s.median is not None and s.median > last:
                s = dataclasses.replace(s, median=None, median_ci=(None, None))
            groups.append(s)
    incidence = a.incidence
    if incidence is not None:
        last = {g: (km.table.time.max() if not km.table.empty else -1) for g, km in curves.items()}
        incidence = incidence[incidence.group.isin(keep)]
        incidence = incidence[incidence.time <= incidence.group.map(last)].reset_index(drop=True)
    small = privacy.small_marker(threshold)
    left_out = {why: (small if 0 < n < threshold else n) for why, n in a.durations.left_out.items()}
    safe = dataclasses.replace(
        a, groups=groups, curves=curves, incidence=incidence, cox=None, pairwise=[],
        risk=_protect_risk(a.risk, {g: a.curves[g].n for g in keep}, threshold),
        durations=dataclasses.replace(a.durations, left_out=left_out))
    return safe, table


# --- cohorts --------------------------------------------------------------------------

def protect_cohorts(r: CohortRetention,
                    threshold: int = privacy.DEFAULT_THRESHOLD) -> tuple[CohortRetention, Protected]:
    """Cohort retention safe to export: cohorts of fewer than `threshold` are left out (their
    n would show), and a month's share is hidden where fewer than `threshold` are still followed.
    A retention read with ``keyed=True`` has its n and numbers at risk perturbed first (cell key
    method), and those decide what is hidden."""
    privacy.check_threshold(threshold)
    if r.n_key is not None:
        r = _perturbed_cohorts(r)
    table = r.table().set_index(r.shares.index.name or "cohort")
    at_risk = r.at_risk.astype("float").rename(columns=lambda m: f"at_risk_{m}")
    table = table.join(at_risk.set_axis(table.index))
    months = [f"month_{m}" for m in r.months]
    counts = ["n", *at_risk.columns]
    p = privacy.protect(table, counts=counts, threshold=threshold,
                        derived={m: ["n", f"at_risk_{m.split('_')[1]}"] for m in months},
                        perturbed=counts if r.n_key is not None else ())
    # Like a curve, a cohort's row stops where fewer than `threshold` remain followed: a later
    # 0% after hidden cells would tell that the last few all left.
    few = np.logical_or.accumulate((table[at_risk.columns] < threshold).to_numpy(), axis=1) \
        & table[months].notna().to_numpy()  # a perturbed count may rise again after one under the threshold
    derived = p.derived.copy()
    derived[months] = derived[months].to_numpy() | few
    p = dataclasses.replace(p, derived=derived, values=p.values.mask(derived))
    keep = ~p.suppressed["n"].to_numpy()
    shares = r.shares[keep].copy()
    shares = shares.where(~p.suppressed[months].to_numpy()[keep])
    safe = dataclasses.replace(r, shares=shares, at_risk=r.at_risk[keep].where(shares.notna()),
                               n=r.n[keep], complete_to=r.complete_to[keep])
    return safe, p


def _perturbed_cohorts(r: CohortRetention) -> CohortRetention:
    """``r`` with n and every number at risk replaced by its published count (cellkey.noisy of the
    count and its cell key), and each known share recomputed from perturbed counts only: the
    actuarial survival (Cutler-Ederer, as the report's cohort life table) over the months, of the
    published number at risk at each month's start and the perturbed drop-outs and censorings
    within it. A Kaplan-Meier share of the true counts beside perturbed ones would give them back."""
    n = pd.Series([cellkey.noisy(c, k) for c, k in zip(r.n, r.n_key)], index=r.n.index, dtype="int64", name="n")
    at_risk = r.at_risk.copy()
    for c in at_risk.index:
        for m in at_risk.columns:
            if pd.notna(at_risk.loc[c, m]):
                at_risk.loc[c, m] = cellkey.noisy(at_risk.loc[c, m], r.at_risk_key.loc[c, m])
    shares = r.shares.copy()
    cells = {(cell.cohort, cell.month): cell for cell in r.intervals.itertuples()}  # keys stay uint64, never float
    for c in shares.index:
        s = 1.0
        for m in shares.columns:
            if pd.isna(shares.loc[c, m]):
                continue
            if m > 0:
                cell = cells[(c, m)]
                s *= survival.actuarial_factor(at_risk.loc[c, m - 1], cellkey.noisy(cell.events, cell.events_key),
                                               cellkey.noisy(cell.censored, cell.censored_key))
            shares.loc[c, m] = s
    return dataclasses.replace(r, n=n, at_risk=at_risk, shares=shares)


def survival_meta(a: SurvivalAnalysis, title: str, definition: str = "") -> ChartMeta:
    d = a.durations
    return ChartMeta(title, definition or d.describe().split(";")[0] + ".", f"n = {d.n:,} participants",
                     d.filters.describe().capitalize(), d.cutoff)


KM_DAYS = (30, 90, 180, 270, 365, 545, 730)  # the life table's intervals start here (merged if needed)


def life_table(days: np.ndarray, event: np.ndarray, groups: np.ndarray,
               threshold: int = privacy.DEFAULT_THRESHOLD, keys: np.ndarray | None = None) -> LifeTable:
    """Durations as a protected life table (analytics.publish.disclosure), as the report publishes
    survival: a Kaplan-Meier curve drawn step by step would show each event. ``keys``: the
    participants' record keys (analytics.publish.cellkey): every count perturbed first."""
    privacy.check_threshold(threshold)
    if len(days) < threshold:
        raise TooFew(f"fewer than {threshold} participants in this selection: nothing can be exported")
    return disclosure.life_table(np.asarray(days), np.asarray(event, dtype=bool), np.asarray(groups, dtype=object),
                                 (*KM_DAYS, *TIMES), threshold, keys=keys)


def km_life_table(a: SurvivalAnalysis, threshold: int = privacy.DEFAULT_THRESHOLD,
                  secret: bytes | None = None) -> LifeTable:
    """The analysis's groups (or everyone) as a protected life table; with the store's cell-key
    ``secret``, every count perturbed from the participants behind it (as in the report)."""
    frame = a.durations.frame
    groups = frame[a.by].astype(str).to_numpy() if a.by else np.full(len(frame), disclosure.ALL, dtype=object)
    keys = None if secret is None else cellkey.record_keys(secret, frame.participant_id.astype(str))
    return life_table(frame.days.to_numpy(), frame.event.to_numpy(), groups, threshold, keys)


def km_export(a: SurvivalAnalysis, threshold: int = privacy.DEFAULT_THRESHOLD,
              secret: bytes | None = None) -> ChartExport:
    """Survival per group as a protected life table: the curve's points, its numbers at risk
    and the table (n, survival and number at risk at 30/90/180/365 days, median) all come from
    the life table's counts, each 0 or at least the threshold (perturbed with ``secret``)."""
    from analytics.charts.survival import km_title, life_table_figure

    lt = km_life_table(a, threshold, secret)
    table = disclosure.protected_table(lt, TIMES)
    meta = survival_meta(a, km_title(a), a.durations.describe().split(";")[0] + ". " + lt.method()
                         + " A blank survival: not published (past the group's follow-up, or a step would "
                         f"show fewer than {threshold} people); never 0%.")
    everyone = ALL_ROW if ALL_ROW in lt.groups else lt.groups[0]
    meta = dataclasses.replace(meta, n=f"n = {lt.n[everyone]:,} participants")  # as published (perturbed)
    fig = life_table_figure(lt, meta.title, a.outcome, max(TIMES), "")
    return ChartExport(f"{a.outcome}-km", meta, table, fig, life_table=lt)


INCIDENCE_KINDS = ("dropped_out", "completed")  # published; other exits are protected but not drawn
EXIT_KINDS = ("dropped_out", "completed", "other_exit")


def incidence_life_table(a: SurvivalAnalysis, threshold: int = privacy.DEFAULT_THRESHOLD,
                         secret: bytes | None = None) -> LifeTable:
    """Exits (of any kind) as a protected life table whose events are split by kind of exit: every
    count of each kind, like the censorings and numbers at risk, 0 or at least the threshold. With
    the store's cell-key ``secret``, every count (each kind's exits too) perturbed from the
    participants behind it, as km_life_table does."""
    privacy.check_threshold(threshold)
    frame = a.durations.frame
    if len(frame) < threshold:
        raise TooFew(f"fewer than {threshold} participants in this selection: nothing can be exported")
    kind = frame.event_type.astype(str).to_numpy(dtype=object)
    groups = frame[a.by].astype(str).to_numpy() if a.by else np.full(len(frame), disclosure.ALL, dtype=object)
    keys = None if secret is None else cellkey.record_keys(secret, frame.participant_id.astype(str))
    return disclosure.life_table(frame.days.to_numpy(), np.isin(kind, EXIT_KINDS), groups, (*KM_DAYS, *TIMES),
                                 threshold, keys=keys, kind=kind, kinds=EXIT_KINDS)


def incidence_export(a: SurvivalAnalysis, threshold: int = privacy.DEFAULT_THRESHOLD,
                     secret: bytes | None = None) -> ChartExport:
    """Cumulative incidence of dropping out vs completing from the life table split by kind of exit
    (incidence_life_table), published at its days only: a step of the Aalen-Johansen curve can be
    one person's exit. The table: n and the incidence of each kind at 30/90/180/365 days. With
    ``secret`` (as the Survival page passes it) every count is perturbed first and the incidences
    are computed from the perturbed counts."""
    from analytics.charts.survival import incidence_table_figure

    if a.incidence is None:
        raise ValueError("cumulative incidence of competing exits exists for the retention outcome only")
    lt = incidence_life_table(a, threshold, secret)
    table = disclosure.incidence_table(lt, TIMES, INCIDENCE_KINDS)
    meta = survival_meta(a, "Dropping out vs completing", "Cumulative incidence of each kind of exit, per "
                         "group. " + lt.method() + " A blank: not published (past the group's follow-up, or "
                         f"an interval would show fewer than {threshold} exits of a kind); never 0%.")
    everyone = ALL_ROW if ALL_ROW in lt.groups else lt.groups[0]
    meta = dataclasses.replace(meta, n=f"n = {lt.n[everyone]:,} participants")
    fig = incidence_table_figure(lt, INCIDENCE_KINDS, meta.title, "")
    return ChartExport(f"{a.outcome}-incidence", meta, table, fig, life_table=lt)


def refusal(fmt: str, title: str, reason: str) -> bytes:
    """A file in the asked format that says why there is nothing in it (too few people),
    so a download never fails silently or hands over a broken file."""
    if fmt == "csv":
        return spreadsheets.csv_bytes(pd.DataFrame({"message": [reason]}))
    if fmt == "xlsx":
        return spreadsheets.xlsx_bytes({title: pd.DataFrame({"message": [reason]})})
    return chart_export.export(message_figure(title, reason), fmt)
