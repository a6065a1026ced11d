"""Recovery capital (BARC-10) and follow-up compliance (issue 14).

- Compliance: due, done and rate of the follow-ups whose window has closed, overall, per
  program/site and per enrollment quarter, against the 80% target; the staff list of who is
  due soon (participant level).
- Change from baseline to the 6-month follow-up among those with both: paired t (mean and
  95% CI), Wilcoxon signed-rank, the share at or above 47 before and after (McNemar).
  People lost to that follow-up are compared with those followed at baseline (Welch t):
  when they differ, a change among completers alone flatters the program, and we say so.
- Trajectories: total on months since enrollment, random intercept and slope per person
  (analytics.stats.growth, ML as lme4 with REML = FALSE).
- Engagement: change against the meetings, check-ins and mentoring sessions between
  baseline and follow-up (OLS, HC3 errors). An association, not an effect: people who
  engage more differ in other ways too.
Definitions and settings: analytics.outcomes.assessments.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.access.roles import ANALYTICS, PARTICIPANT_LEVEL, requires
from analytics.outcomes.assessments import MONTH_DAYS, AssessmentSettings
from analytics.outcomes.definitions import latest_date
from analytics.outcomes.filters import Filters
from analytics.stats import paired
from analytics.stats.growth import Growth, fit_growth
from analytics.store.connection import Store
from analytics.store.queries import assessments as q

__all__ = ["AssessmentResult", "Change", "NoAssessments", "analyse_assessments", "compliance_table",
           "due_soon", "format_text", "schedule_frame", "schedule_frame_for"]

SIGNIFICANCE = 0.05  # lost-to-follow-up differs at baseline when Welch p is below this
ENGAGEMENT_TERMS = ("meetings", "checkins", "mentoring", "months")
SCHEDULE_COLUMNS = ["participant_id", "program", "due", "done"]
TERM_LABELS = {"meetings": "meeting", "checkins": "check-in", "mentoring": "mentoring session",
               "months": "month between the two"}


class NoAssessments(ValueError):
    """The filters leave no participant with a baseline assessment."""


@dataclass(frozen=True)
class Change:
    """Baseline to the first (6-month) follow-up among those with both."""

    n: int
    mean: float
    ci: tuple[float, float]
    p_t: float
    p_wilcoxon: float
    share_baseline: float  # at or above the threshold
    share_followup: float
    p_mcnemar: float

    def to_json(self) -> dict:
        return {"n": self.n, "mean": _num(self.mean), "ci": [_num(v) for v in self.ci],
                "p_t": _num(self.p_t), "p_wilcoxon": _num(self.p_wilcoxon),
                "at_or_above_47": {"baseline": _num(self.share_baseline),
                                   "followup": _num(self.share_followup), "p_mcnemar": _num(self.p_mcnemar)}}


@dataclass
class AssessmentResult:
    settings: AssessmentSettings
    filters: Filters
    cutoff: dt.date
    enrolled_n: int
    baseline_n: int
    due: int
    done: int
    change: Change
    by_group: list[dict]
    compliance: pd.DataFrame  # program, site, cohort_quarter, due, done, rate
    pairs: pd.DataFrame  # participant_id, program, baseline_total, followup_total, meetings, ...
    baselines: pd.DataFrame  # participant_id, program, baseline_total, lost (None: not yet due)
    lost: paired.TwoMeans  # baseline totals: followed vs lost to the 6-month follow-up
    growth: Growth | None
    engagement: pd.DataFrame  # term, coef, ci_low, ci_high, p
    trajectories: pd.DataFrame
    # participant_id, program, due, done: one row per participant x follow-up (a person with no
    # follow-up yet: one row, not due), so the report can key each count by its members (not in to_json)
    schedule: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SCHEDULE_COLUMNS))
    warnings: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.done / self.due if self.due else float("nan")

    def to_json(self) -> dict:
        g = self.growth
        return {
            "instrument": self.settings.instrument,
            "baseline_n": self.baseline_n,
            "followup": {"due": self.due, "done": self.done, "rate": _num(self.rate),
                         "target": self.settings.target_rate},
            "change": self.change.to_json(),
            "by_group": self.by_group,
            "mixed_model": {"slope_per_month": _num(g.slope) if g else None,
                            "ci": [_num(v) for v in g.ci] if g else [None, None]},
            "warnings": list(self.warnings),
        }

    def note(self) -> str:
        """One line for chart notes: definitions, n, cutoff, filters."""
        s = self.settings
        return (f"BARC-10 total (10-60); baseline within {s.baseline_before_days} days of enrollment, "
                f"follow-up {s.first_followup_days} days after it (+/- {s.window_days}); "
                f"baseline n={self.baseline_n:,}; data to {self.cutoff}; {self.filters.describe()}")


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


# --- schedule and compliance ------------------------------------------------------------

def resolve_cutoff(store: Store, settings: AssessmentSettings) -> dt.date:
    if settings.cutoff is not None:
        return settings.cutoff
    found = latest_date(store)
    if found is None:
        raise NoAssessments("the store holds no data")
    return found


def schedule_frame(store: Store, filters: Filters, settings: AssessmentSettings, cutoff: dt.date) -> pd.DataFrame:
    """One row per participant x follow-up (see queries.assessments.schedule) with the flags
    due (window closed, not deceased before it) and done (an assessment in the window);
    dates as datetime64."""
    s = settings
    frame = q.schedule(store, filters, instrument=s.instrument, cutoff=cutoff, before=s.baseline_before_days,
                       after=s.baseline_after_days, days=s.followup_days, window=s.window_days, soon=s.due_soon_days)
    return frame.astype({"due": bool, "done": bool, "deceased_before": bool})


@requires(ANALYTICS)
def schedule_frame_for(store: Store, filters: Filters = Filters(),
                       settings: AssessmentSettings = AssessmentSettings()) -> pd.DataFrame:
    """schedule_frame at the settings' cutoff (the page's compliance table per chosen grouping)."""
    return schedule_frame(store, filters, settings, resolve_cutoff(store, settings))


def compliance_table(frame: pd.DataFrame, by: list[str], target: float) -> pd.DataFrame:
    """Due, done and rate per group, with whether the rate reaches the target."""
    due = frame[frame.due]
    out = due.groupby(by, dropna=False).agg(due=("due", "size"), done=("done", "sum")).reset_index()
    out["done"] = out.done.astype(int)
    out["rate"] = out.done / out.due
    out["meets_target"] = out.rate >= target
    return out


# --- change ----------------------------------------------------------------------------

def change_of(pairs: pd.DataFrame, threshold: int) -> Change:
    before, after = pairs.baseline_total.to_numpy(float), pairs.followup_total.to_numpy(float)
    t = paired.paired_t(after, before)
    nan = float("nan")
    return Change(t.n, t.mean, t.ci, t.p, paired.wilcoxon_signed_rank(after, before) if t.n else nan,
                  float((before >= threshold).mean()) if t.n else nan,
                  float((after >= threshold).mean()) if t.n else nan,
                  paired.mcnemar(before >= threshold, after >= threshold) if t.n else nan)


def first_followups(frame: pd.DataFrame) -> pd.DataFrame:
    """Participants whose 6-month follow-up was due, with its result (lost: not done)."""
    first = frame[(frame.k == 1) & frame.due].copy()
    first["lost"] = ~first.done
    return first


def engagement_model(store: Store, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OLS of change on engagement between baseline and follow-up (HC3); the pairs with counts."""
    import statsmodels.api as sm

    counts = q.engagement_between(store, pairs.rename(columns={"baseline_on": "start", "done_on": "stop"})
                                  [["participant_id", "start", "stop"]])
    merged = pairs.merge(counts[["participant_id", "meetings", "checkins", "mentoring"]], on="participant_id")
    merged["months"] = (pd.to_datetime(merged.done_on) - pd.to_datetime(merged.baseline_on)).dt.days / MONTH_DAYS
    if len(merged) < len(ENGAGEMENT_TERMS) + 5:
        return pd.DataFrame(columns=["term", "coef", "ci_low", "ci_high", "p"]), merged
    X = sm.add_constant(merged[list(ENGAGEMENT_TERMS)].astype(float))
    fit = sm.OLS(merged.followup_total - merged.baseline_total, X).fit(cov_type="HC3")
    ci = fit.conf_int()
    rows = [{"term": t, "coef": float(fit.params[t]), "ci_low": float(ci.loc[t, 0]),
             "ci_high": float(ci.loc[t, 1]), "p": float(fit.pvalues[t])} for t in ENGAGEMENT_TERMS]
    return pd.DataFrame(rows), merged


# --- the analysis ----------------------------------------------------------------------

@requires(ANALYTICS)
def analyse_assessments(store: Store, filters: Filters = Filters(),
                        settings: AssessmentSettings = AssessmentSettings()) -> AssessmentResult:
    """Compliance, change, trajectories and the engagement association for the filters."""
    cutoff = resolve_cutoff(store, settings)
    frame = schedule_frame(store, filters, settings, cutoff)
    people = frame.drop_duplicates("participant_id")
    with_base = people[people.baseline_on.notna()]
    if with_base.empty:
        raise NoAssessments(f"no participant with a baseline {settings.instrument} assessment ({filters.describe()})")
    first = first_followups(frame)
    pairs = first[first.done][["participant_id", "program", "site", "baseline_on", "done_on",
                               "baseline_total", "followup_total"]].reset_index(drop=True)
    engagement, pairs = engagement_model(store, pairs)
    lost = paired.welch_t(first.baseline_total[first.lost], first.baseline_total[~first.lost])
    baselines = with_base[["participant_id", "program", "site", "baseline_total"]].merge(
        first[["participant_id", "lost"]], on="participant_id", how="left")
    traj = q.trajectories(store, filters, instrument=settings.instrument, cutoff=cutoff,
                          before=settings.baseline_before_days, month_days=MONTH_DAYS)
    growth = _growth(traj)
    due, done = int(frame.due.sum()), int(frame.done.sum())
    change = change_of(pairs, settings.threshold_total)
    result = AssessmentResult(
        settings, filters, cutoff, len(people), len(with_base), due, done, change,
        _by_group(frame, pairs, settings), compliance_table(frame, ["program", "site", "cohort_quarter"],
                                                           settings.target_rate),
        pairs, baselines, lost, growth, engagement, traj, frame[SCHEDULE_COLUMNS].reset_index(drop=True))
    result.warnings = _warnings(result)
    return result


def _growth(traj: pd.DataFrame) -> Growth | None:
    """The mixed model needs people with two or more assessments."""
    counts = traj.participant_id.value_counts()
    if (counts >= 2).sum() < 5:
        return None
    return fit_growth(traj)


def _by_group(frame: pd.DataFrame, pairs: pd.DataFrame, s: AssessmentSettings) -> list[dict]:
    out = []
    for program, rows in frame.groupby("program", sort=True):
        due, done = int(rows.due.sum()), int(rows.done.sum())
        out.append({"group": program,
                    "baseline_n": int(rows[rows.baseline_on.notna()].participant_id.nunique()),
                    "followup": {"due": due, "done": done, "rate": _num(done / due if due else float("nan")),
                                 "target": s.target_rate},
                    "change": change_of(pairs[pairs.program == program], s.threshold_total).to_json()})
    return out


def _warnings(r: AssessmentResult) -> list[str]:
    out = []
    s = r.settings
    if r.due and r.rate < s.target_rate:
        out.append(f"The follow-up rate is {r.rate:.0%}, below the {s.target_rate:.0%} target "
                   f"({r.done:,} of {r.due:,} follow-ups due were done).")
    if r.change.n < 2:
        out.append("Too few people have both a baseline and a 6-month follow-up to estimate the change.")
    lost = r.lost
    if not math.isnan(lost.p) and lost.p < SIGNIFICANCE:
        direction = "lower" if lost.difference < 0 else "higher"
        out.append(f"People lost to the 6-month follow-up had {direction} recovery capital at baseline "
                   f"(mean {lost.means[0]:.1f} vs {lost.means[1]:.1f}, Welch p={lost.p:.2g}): the change among "
                   "those followed up alone " + ("flatters the program." if direction == "lower" else
                                                 "may understate it."))
    if r.growth is not None and not r.growth.converged:
        out.append("The mixed model did not converge; its slope is unreliable.")
    return out


# --- the staff list ----------------------------------------------------------------------

@requires(PARTICIPANT_LEVEL)
def due_soon(store: Store, filters: Filters = Filters(), settings: AssessmentSettings = AssessmentSettings()
             ) -> pd.DataFrame:
    """Participants with a follow-up not yet done whose window is open at the cutoff or opens
    within due_soon_days: who to reassess now. Pseudonymous IDs; staff only."""
    cutoff = resolve_cutoff(store, settings)
    frame = schedule_frame(store, filters, settings, cutoff)
    now, soon = pd.Timestamp(cutoff), pd.Timestamp(cutoff + dt.timedelta(days=settings.due_soon_days))
    open_ = frame[frame.k.notna() & frame.done_on.isna() & ~frame.deceased_before
                  & (frame.window_to >= now) & (frame.window_from <= soon)
                  & (frame.exit_reason.isna() | (frame.exit_reason != "deceased"))]
    out = open_[["participant_id", "program", "site", "k", "baseline_on", "due_on", "window_from",
                 "window_to"]].copy()
    out["k"] = out.k.astype(int)
    out["days_left"] = (out.window_to - now).dt.days
    out["status"] = [f"opens in {(f - now).days} days" if f > now else
                     f"overdue: closes in {(w - now).days} days" if d < now else
                     f"open: closes in {(w - now).days} days"
                     for f, d, w in zip(out.window_from, out.due_on, out.window_to)]
    for col in ("baseline_on", "due_on", "window_from", "window_to"):
        out[col] = out[col].dt.date
    return out.rename(columns={"k": "followup"}).sort_values(["window_to", "participant_id"]).reset_index(drop=True)


# --- text ------------------------------------------------------------------------------

def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_text(r: AssessmentResult) -> str:
    c, s = r.change, r.settings
    lines = [f"Recovery capital ({s.instrument}), data to {r.cutoff}; {r.filters.describe()}",
             f"participants {r.enrolled_n:,}, with a baseline {r.baseline_n:,}",
             f"follow-ups due {r.due:,}, done {r.done:,}, rate {_fmt(r.rate, '.1%')} (target {s.target_rate:.0%})",
             f"change baseline to 6 months (n={c.n:,}): mean {_fmt(c.mean)} (95% CI {_fmt(c.ci[0])} to "
             f"{_fmt(c.ci[1])}), paired t p={_fmt(c.p_t, '.3g')}, Wilcoxon p={_fmt(c.p_wilcoxon, '.3g')}",
             f"at or above {s.threshold_total}: baseline {_fmt(c.share_baseline, '.1%')}, follow-up "
             f"{_fmt(c.share_followup, '.1%')}, McNemar p={_fmt(c.p_mcnemar, '.3g')}",
             f"baseline of those lost vs followed: {_fmt(r.lost.means[0], '.1f')} vs {_fmt(r.lost.means[1], '.1f')}"
             f" (Welch p={_fmt(r.lost.p, '.3g')})"]
    if r.growth:
        g = r.growth
        lines.append(f"mixed model (ML, random intercept and slope; {g.n_people:,} people, {g.n_obs:,} assessments): "
                     f"{g.slope:.3f} points per month (95% CI {g.ci[0]:.3f} to {g.ci[1]:.3f})")
    if not r.engagement.empty:
        lines.append("change with engagement between baseline and follow-up (association, not effect):")
        for row in r.engagement.itertuples():
            lines.append(f"  per {TERM_LABELS[row.term]}: {row.coef:+.3f} "
                         f"(95% CI {row.ci_low:+.3f} to {row.ci_high:+.3f}), p={row.p:.3g}")
    lines.append("")
    for g in r.by_group:
        f, ch = g["followup"], g["change"]
        lines.append(f"{g['group']}: baseline {g['baseline_n']:,}; follow-up {f['done']}/{f['due']} "
                     f"({_fmt(f['rate'], '.1%')}); change n={ch['n']} mean {_fmt(ch['mean'])}")
    lines += [f"warning: {w}" for w in r.warnings]
    return "\n".join(lines)
