"""The report's two recovery-capital sections (follow-up rate; change), protected.

Population: participants enrolled up to the reporting period's end, follow-ups due by the data
cutoff: the same numbers as `python -m analytics assessments --enrolled-to END` and the
Recovery capital page with that filter. Every count of people (baseline, due, done, missed,
pairs, at or above 47, lost) goes through privacy.protect with the All row as total and
done + missed = due, so no hidden count can be worked out; rates, means, CIs and shares built
on a hidden count are hidden too.
"""

from __future__ import annotations

import pandas as pd

from analytics.analyses.assessments import AssessmentResult
from analytics.charts.assessments import compliance_figure, mean_change_figure
from analytics.charts.render import ChartMeta
from analytics.publish import privacy
from analytics.publish.exports import ALL_ROW, ChartExport


def rate_table(r: AssessmentResult) -> pd.DataFrame:
    rows = {g["group"]: (g["baseline_n"], g["followup"]["due"], g["followup"]["done"]) for g in r.by_group}
    if len(rows) != 1:
        rows[ALL_ROW] = (r.baseline_n, r.due, r.done)
    t = pd.DataFrame.from_dict(rows, orient="index", columns=["baseline_n", "due", "done"])
    t["missed"] = t.due - t.done
    t["rate"] = t.done / t.due.where(t.due > 0)
    return t


def change_table(r: AssessmentResult) -> pd.DataFrame:
    groups = {g["group"]: g["change"] for g in r.by_group}
    if len(groups) != 1:
        groups[ALL_ROW] = r.change.to_json()
    t = pd.DataFrame({name: {
        "n": c["n"], "mean_change": c["mean"], "ci_low": c["ci"][0], "ci_high": c["ci"][1],
        "p_t": c["p_t"], "p_wilcoxon": c["p_wilcoxon"]} for name, c in groups.items()}).T
    pairs = r.pairs.assign(b47=r.pairs.baseline_total >= r.settings.threshold_total,
                           f47=r.pairs.followup_total >= r.settings.threshold_total)
    by = pairs.groupby("program")[["b47", "f47"]].sum()
    by.loc[ALL_ROW] = pairs[["b47", "f47"]].sum()
    t["at_or_above_47_baseline"] = by.b47.reindex(t.index).fillna(0).astype(int)
    t["at_or_above_47_followup"] = by.f47.reindex(t.index).fillna(0).astype(int)
    for when in ("baseline", "followup"):
        t[f"share_47_{when}"] = t[f"at_or_above_47_{when}"] / t.n.where(t.n > 0)
    return t.astype({"n": int})


def sections(r: AssessmentResult, threshold: int, scope: str) -> list[tuple[str, str, ChartExport]]:
    """(title, text, export) of the follow-up rate and the change sections."""
    s = r.settings
    table = rate_table(r)
    rate = privacy.protect(table, counts=["baseline_n", "due", "done", "missed"],
                           sums=[(["done", "missed"], "due")], derived={"rate": ["done", "due", "missed"]},
                           total_row=ALL_ROW if ALL_ROW in table.index else None, threshold=threshold)
    definition = (f"Baseline: the first BARC-10 from {s.baseline_before_days} days before to {s.baseline_after_days} "
                  f"days after enrollment. A follow-up is due {s.first_followup_days} days after baseline, then "
                  f"yearly; done when assessed within +/- {s.window_days} days; counted once its window has closed "
                  f"by the cutoff; not due for participants who died before the window.")
    meta = ChartMeta("Follow-up rate", definition, "n: follow-ups due, see table", scope, r.cutoff)
    fig = compliance_figure(rate.values.reset_index(names="group"), "group", s.target_rate, title=meta.title)
    rate_text = (f"Share of follow-up assessments done among those due, per program, against the "
                 f"{s.target_rate:.0%} target (SAMHSA SUPRT schedule).")
    change = change_table(r)
    counts = ["n", "at_or_above_47_baseline", "at_or_above_47_followup"]
    ch = privacy.protect(change, counts=counts, total_row=ALL_ROW if ALL_ROW in change.index else None,
                         derived={"mean_change": ["n"], "ci_low": ["n"], "ci_high": ["n"], "p_t": ["n"],
                                  "p_wilcoxon": ["n"],
                                  "share_47_baseline": ["at_or_above_47_baseline", "n"],
                                  "share_47_followup": ["at_or_above_47_followup", "n"]},
                         threshold=threshold)
    cmeta = ChartMeta("Change in recovery capital", "BARC-10 total (10-60), 6-month follow-up minus baseline, "
                      "among participants with both; mean with 95% CI (paired t), Wilcoxon signed-rank p; "
                      f"share at or above {s.threshold_total} (went with sustained remission).",
                      "n: see table", scope, r.cutoff)
    cfig = mean_change_figure(ch.values, title=cmeta.title)
    caveat = ""
    if any("flatters" in w for w in r.warnings):
        caveat = (" People lost to follow-up had lower recovery capital at baseline than those followed up: "
                  "the change among those followed alone overstates the change for everyone served.")
    change_text = ("Change in recovery capital from baseline to the 6-month follow-up among participants "
                   "assessed at both." + caveat)
    return [("Follow-up rate", rate_text, ChartExport("followup-rate", meta, rate, fig)),
            ("Recovery capital change", change_text, ChartExport("recovery-capital-change", cmeta, ch, cfig))]
