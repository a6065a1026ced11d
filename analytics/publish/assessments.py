"""The report's two recovery-capital sections (follow-up rate; change), protected.

Population: participants enrolled up to the reporting period's end, follow-ups due by the data
cutoff: the same numbers as `python -m analytics assessments --enrolled-to END` and the
Recovery capital page with that filter (there unperturbed: staff see true counts).

With the store's secret every count is perturbed by the cell key method (analytics.publish.cellkey)
before suppression, so a request with other filters (a program, then the program minus a site)
differs from this one by noise only:

- people (baseline, pairs, at or above 47): the cell key is the sum of the members' record keys;
- follow-ups (due, done, missed) count follow-ups, not people: a person with two follow-ups due
  (yearly after the first) adds her record key twice. The same follow-ups always get the same key,
  so the same noise, in every request;
- All: everyone in it (the sum of the programs' keys), perturbed on its own like any total;
- missed is perturbed on its own (its members: the due follow-ups not done), not published as
  due - done: then every published count is its true count +/- 2, which is what the method
  statement and the auditor read (a missed of due - done would be off by up to 4), and a missed of
  0 (done = due: the same follow-ups) is published as done = due;
- rate = published done / published due and share = published at or above 47 / published n
  (at most 100%), never from the true counts beside perturbed ones, which would give those back.

Then every count goes through privacy.protect with the All row as total and done + missed = due,
so no hidden count can be worked out; rates, means, CIs and shares built on a hidden count are
hidden too. Means, CIs and p values are model estimates from the true data, rounded as the report
prints them (mean 1 decimal, CI 2, p 3): a full-precision mean times the true n is a whole number,
which would tell the true n among the candidates a perturbed n leaves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.analyses.assessments import AssessmentResult
from analytics.charts.assessments import compliance_figure, mean_change_figure
from analytics.charts.render import ChartMeta
from analytics.publish import cellkey, privacy
from analytics.publish.exports import ALL_ROW, ChartExport

RATE_COUNTS = ("baseline_n", "due", "done", "missed")
CHANGE_COUNTS = ("n", "at_or_above_47_baseline", "below_47_baseline", "at_or_above_47_followup",
                 "below_47_followup")
CHANGE_SUMS = [([f"at_or_above_47_{when}", f"below_47_{when}"], "n") for when in ("baseline", "followup")]
DECIMALS = {"mean_change": 1, "ci_low": 2, "ci_high": 2}  # as the report prints them
P_DIGITS = 2  # p values to 2 significant digits: 3 decimals would write p < 0.0005 as 0.0 in a file


def published_counts(secret: bytes, rows: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Per table row (a program; All: every row): the published count of ``rows`` (participant_id,
    program; one row per person, or per follow-up for follow-up counts), each row adding its
    participant's record key to the cell key."""
    ids = rows.participant_id.unique()
    keys = pd.Series(cellkey.record_keys(secret, ids), index=ids).reindex(rows.participant_id).to_numpy(np.uint64)
    return pd.Series({group: cellkey.published(keys if group == ALL_ROW else keys[(rows.program == group).to_numpy()])
                      for group in index}, dtype=int)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den where den > 0 (at most 1: perturbed, a part may come out above its whole)."""
    return (num / den.where(den > 0)).clip(upper=1.0)


def rate_table(r: AssessmentResult, secret: bytes | None = None) -> pd.DataFrame:
    """Baseline people, follow-ups due, done and missed per program (and All), and the rate:
    true counts, or with ``secret`` the perturbed ones (module docstring)."""
    rows = {g["group"]: (g["baseline_n"], g["followup"]["due"], g["followup"]["done"]) for g in r.by_group}
    if len(rows) != 1:
        rows[ALL_ROW] = (r.baseline_n, r.due, r.done)
    t = pd.DataFrame.from_dict(rows, orient="index", columns=["baseline_n", "due", "done"])
    t["missed"] = t.due - t.done
    if secret is not None:
        due = r.schedule[r.schedule.due]
        for col, members in (("baseline_n", r.baselines), ("due", due), ("done", due[due.done]),
                             ("missed", due[~due.done])):
            t[col] = published_counts(secret, members, t.index)
    t["rate"] = _ratio(t.done, t.due)
    return t


def change_table(r: AssessmentResult, secret: bytes | None = None) -> pd.DataFrame:
    """Pairs (baseline and 6-month follow-up), mean change with CI and p values, and the people at
    or above the threshold before and after with their shares, per program (and All)."""
    groups = {g["group"]: g["change"] for g in r.by_group}
    if len(groups) != 1:
        groups[ALL_ROW] = r.change.to_json()
    t = pd.DataFrame({name: {
        "n": c["n"], "mean_change": c["mean"], "ci_low": c["ci"][0], "ci_high": c["ci"][1],
        "p_t": c["p_t"], "p_wilcoxon": c["p_wilcoxon"]} for name, c in groups.items()}).T
    t = t.astype(float).round(DECIMALS).astype({"n": int})
    for col in ("p_t", "p_wilcoxon"):
        t[col] = [float(f"{v:.{P_DIGITS}g}") for v in t[col]]
    pairs = r.pairs[["participant_id", "program"]]
    b47 = (r.pairs.baseline_total >= r.settings.threshold_total).to_numpy()
    f47 = (r.pairs.followup_total >= r.settings.threshold_total).to_numpy()
    # below 47 is published too (n minus at or above would tell it): a small one is hidden with a complement
    members = {"at_or_above_47_baseline": pairs[b47], "below_47_baseline": pairs[~b47],
               "at_or_above_47_followup": pairs[f47], "below_47_followup": pairs[~f47]}
    for col, rows in members.items():
        t[col] = _true_counts(rows, t.index)
    if secret is not None:
        for col, rows in {"n": pairs, **members}.items():
            t[col] = published_counts(secret, rows, t.index)
    for when in ("baseline", "followup"):
        t[f"share_47_{when}"] = _ratio(t[f"at_or_above_47_{when}"], t.n)
    return t[["n", "mean_change", "ci_low", "ci_high", "p_t", "p_wilcoxon", "at_or_above_47_baseline",
              "below_47_baseline", "at_or_above_47_followup", "below_47_followup", "share_47_baseline",
              "share_47_followup"]]


def _true_counts(rows: pd.DataFrame, index: pd.Index) -> pd.Series:
    return pd.Series({g: int(len(rows) if g == ALL_ROW else (rows.program == g).sum()) for g in index}, dtype=int)


def sections(r: AssessmentResult, threshold: int, scope: str,
             secret: bytes | None = None) -> list[tuple[str, str, ChartExport]]:
    """(title, text, export) of the follow-up rate and the change sections; with the store's
    cell-key ``secret`` every count of people or follow-ups is perturbed first (module docstring)."""
    s = r.settings
    perturbed = secret is not None
    table = rate_table(r, secret)
    rate = privacy.protect(table, counts=RATE_COUNTS, sums=[(["done", "missed"], "due")],
                           derived={"rate": ["done", "due", "missed"]},
                           total_row=ALL_ROW if ALL_ROW in table.index else None, threshold=threshold,
                           perturbed=RATE_COUNTS if perturbed else ())
    definition = (f"Baseline: the first BARC-10 from {s.baseline_before_days} days before to {s.baseline_after_days} "
                  f"days after enrollment. A follow-up is due {s.first_followup_days} days after baseline, then "
                  f"yearly; done when assessed within +/- {s.window_days} days; counted once its window has closed "
                  f"by the cutoff; not due for participants who died before the window.")
    meta = ChartMeta("Follow-up rate", definition, "n: follow-ups due, see table", scope, r.cutoff)
    fig = compliance_figure(rate.values.reset_index(names="group"), "group", s.target_rate, title=meta.title)
    rate_text = (f"Share of follow-up assessments done among those due, per program, against the "
                 f"{s.target_rate:.0%} target (SAMHSA SUPRT schedule).")
    change = change_table(r, secret)
    ch = privacy.protect(change, counts=CHANGE_COUNTS, sums=CHANGE_SUMS,
                         total_row=ALL_ROW if ALL_ROW in change.index else None,
                         derived={"mean_change": ["n"], "ci_low": ["n"], "ci_high": ["n"], "p_t": ["n"],
                                  "p_wilcoxon": ["n"],
                                  "share_47_baseline": ["at_or_above_47_baseline", "n"],
                                  "share_47_followup": ["at_or_above_47_followup", "n"]},
                         threshold=threshold, perturbed=CHANGE_COUNTS if perturbed else ())
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
