"""How peer engagement relates to retention and sobriety, without immortal-time bias.

People who stay longer have more time to attend, so comparing each person's total
engagement with how long they stayed makes engagement look protective even when it
does nothing (immortal-time bias). The analyses here only use engagement measured
before the time it is used to explain:

- time-varying Cox: the hazard of leaving (or relapsing) in a week against the
  previous week's meetings, check-ins and mentoring sessions, adjusted for program
  and chosen descriptors; fitted on the person-week table collapsed in DuckDB with
  our exact Efron counting-process Cox (analytics.tvcox), which equals R's coxph;
- landmark analyses at 30, 60 and 90 days: among those still in at the landmark,
  engagement before it against what happens after it (Cox, KM by tier, and the odds
  of still being in at 6 months by logistic regression);
- repeated measures (GEE, participants as clusters, independence working
  correlation, robust standard errors): reported use in a week, and craving, against
  the previous week's engagement. GEE assumes that missing weeks are unrelated to
  the outcome, which dropout may violate.

The naive estimate (total engagement against total time) is computed too, labelled
as biased, so the difference can be seen. Associations are not proof of cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from analytics import survival
from analytics.filters import Filters
from analytics.outcomes import DESCRIPTORS, MISSING_LEVEL, OutcomeSettings, durations, durations_sql, resolve_cutoff
from analytics.person_weeks import LAGGED, PersonWeeks, person_weeks, person_weeks_sql
from analytics.store import Store
from analytics.tvcox import fit_counting_cox

TERMS = {"meetings_prev": "attendance", "checkins_prev": "checkins", "mentoring_prev": "mentoring"}
LANDMARKS = (30, 60, 90)
TIERS = ((0, 0, "0"), (1, 3, "1-3"), (4, 7, "4-7"), (8, None, "8+"))
SIX_MONTHS = 182
Z95 = stats.norm.ppf(0.975)

EXPLANATION = (
    "Why the naive numbers mislead: someone who stays in the program for a year has a year "
    "in which to attend meetings; someone who leaves after a month has only a month. So "
    "people with many meetings in total are mostly people who stayed, whether or not the "
    "meetings helped them stay. Comparing total meetings with time in the program therefore "
    "makes meetings look strongly protective even if they do nothing. The corrected analyses "
    "compare, week by week, people who are all still in the program, using only what they "
    "did in the previous week (or before a fixed landmark day). Even the corrected numbers "
    "show an association, not proof that engagement causes people to stay.")


@dataclass
class Term:
    """One effect: a hazard ratio (or odds ratio, or difference) per unit with its 95% CI."""

    term: str
    estimate: float
    ci: tuple[float, float]
    p: float
    measure: str = "hr"  # hr, or, diff
    unit: str = ""

    def to_json(self) -> dict:
        return {"term": self.term, self.measure: self.estimate, "ci": list(self.ci), "p": self.p,
                "measure": self.measure, "unit": self.unit}


@dataclass
class Landmark:
    day: int
    n: int
    events: int
    terms: list[Term]  # Cox: HR per meeting/check-in/session before the landmark
    tiers: list[Term]  # Cox: HR of each meetings tier against 0 meetings
    odds: list[Term]  # logistic: odds of still being in at 6 months
    odds_n: int
    curves: dict[str, survival.KaplanMeier] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"day": self.day, "n": self.n, "events": self.events, "terms": [t.to_json() for t in self.terms],
                "tiers": [t.to_json() for t in self.tiers], "odds_in_at_6_months": [t.to_json() for t in self.odds],
                "odds_n": self.odds_n}


@dataclass
class EngagementAnalysis:
    outcome: str
    n: int
    events: int
    person_weeks: int
    adjusted_for: list[str]
    time_varying: list[Term]
    adjustment_terms: list[Term]
    landmarks: list[Landmark]
    gee: list[Term]
    naive: list[Term]
    left_out: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    def gee_table(self) -> pd.DataFrame:
        """The repeated-measures results as a table: estimate, 95% CI, p, what it measures."""
        return pd.DataFrame([{"term": t.term, "estimate": t.estimate, "ci_lower": t.ci[0], "ci_upper": t.ci[1],
                              "p": t.p, "measure": {"or": "odds ratio", "hr": "hazard ratio",
                                                    "diff": "difference"}[t.measure], "per": t.unit}
                             for t in self.gee])

    def to_json(self) -> dict:
        return {
            "outcome": self.outcome, "n": self.n, "events": self.events, "person_weeks": self.person_weeks,
            "time_varying": [t.to_json() for t in self.time_varying],
            "landmark": [lm.to_json() for lm in self.landmarks],
            "gee": [t.to_json() for t in self.gee],
            "naive": [t.to_json() for t in self.naive],
            "adjusted_for": self.adjusted_for,
            "adjustment_terms": [t.to_json() for t in self.adjustment_terms],
            "left_out": self.left_out, "warnings": self.warnings,
            "explanation": EXPLANATION,
            "naive_label": "BIASED (immortal time): total engagement against total time in the program",
        }


# ------------------------------------------------------------ helpers ---

def _dummies(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Treatment dummies against the most frequent recorded level of each column."""
    parts = []
    for col in columns:
        values = frame[col].astype("category")
        counts = values.value_counts()
        counts = counts[counts > 0]
        recorded = counts.drop(MISSING_LEVEL, errors="ignore")
        ref = sorted((recorded if len(recorded) else counts).pipe(lambda c: c.index[c == c.max()]))[0]
        levels = [lv for lv in sorted(counts.index) if lv != ref]
        parts.append(pd.DataFrame({f"{col}: {lv} vs {ref}": (values == lv).astype(float) for lv in levels},
                                  index=frame.index))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def _cox_terms(result, names: dict[str, str], unit: str) -> list[Term]:
    table = result.table().set_index("term")
    return [Term(label, float(table.hr[col]), (float(table.lo[col]), float(table.hi[col])), float(table.p[col]),
                 "hr", unit) for col, label in names.items() if col in table.index]


def _fit_cox(time: np.ndarray, event: np.ndarray, X: pd.DataFrame, weights: np.ndarray | None = None):
    """Ordinary Cox via the counting-process fit: entry 0, exit at day + 1 (positive length)."""
    X = X.loc[:, X.std() > 0]
    return fit_counting_cox(np.zeros(len(time)), np.asarray(time, float) + 1, np.asarray(event, bool),
                            X.to_numpy(float), weights=weights, names=list(X.columns))


# ------------------------------------------------------- time-varying ---

def collapsed_person_weeks(store: Store, outcome: str, adjust: Sequence[str], settings: OutcomeSettings,
                           filters: Filters) -> pd.DataFrame:
    """Identical person-week rows merged with a count, in DuckDB: the model's input."""
    sql, params = person_weeks_sql(store, outcome, settings, filters)
    keys = ["tstart", "tstop", "event", *LAGGED, *adjust]
    return store.categorical_df(f"SELECT {', '.join(keys)}, count(*) AS n FROM ({sql}) GROUP BY ALL", params)


def time_varying(store: Store, outcome: str, adjust: Sequence[str], settings: OutcomeSettings,
                 filters: Filters) -> tuple[list[Term], list[Term]]:
    """HR per one more meeting / check-in / mentoring session in the previous week."""
    rows = collapsed_person_weeks(store, outcome, adjust, settings, filters)
    X = pd.concat([rows[list(LAGGED)].astype(float), _dummies(rows, adjust)], axis=1)
    X = X.loc[:, X.std() > 0]
    fit = fit_counting_cox(rows.tstart.to_numpy(float), rows.tstop.to_numpy(float), rows.event.to_numpy(bool),
                           X.to_numpy(float), weights=rows.n.to_numpy(float), names=list(X.columns))
    main = _cox_terms(fit, TERMS, "per one more a week (previous week)")
    others = _cox_terms(fit, {c: c for c in X.columns if c not in TERMS}, "")
    return main, others


# ----------------------------------------------------------- landmark ---

_LANDMARK = """
WITH dur AS ({durations}),
f AS (SELECT * FROM dur WHERE left_out IS NULL AND stop - start >= $landmark
      AND NOT (event AND stop - start = $landmark)),
counts AS (
    SELECT f.participant_id,
           (SELECT count(*) FROM attendance a WHERE a.participant_id = f.participant_id
              AND a.attended_on >= f.start AND a.attended_on < f.start + $landmark) AS meetings,
           (SELECT count(*) FROM checkins c WHERE c.participant_id = f.participant_id
              AND c.checked_in_on >= f.start AND c.checked_in_on < f.start + $landmark) AS checkins,
           (SELECT count(*) FROM mentoring m WHERE m.participant_id = f.participant_id
              AND m.met_on >= f.start AND m.met_on < f.start + $landmark) AS mentoring
    FROM f)
SELECT f.participant_id, {descriptors}, (f.stop - f.start) - $landmark AS days_after, f.event,
       c.meetings, c.checkins, c.mentoring, (f.stop - f.start) AS days
FROM f JOIN counts c USING (participant_id)
"""


def tier(meetings: pd.Series) -> pd.Series:
    """0, 1-3, 4-7, 8+ meetings."""
    labels = pd.Series("8+", index=meetings.index)
    for low, high, label in TIERS[:-1]:
        labels[(meetings >= low) & (meetings <= high)] = label
    return labels


def landmark(store: Store, outcome: str, day: int, adjust: Sequence[str], settings: OutcomeSettings,
             filters: Filters) -> Landmark | None:
    """Among those still followed (and not yet failed) at `day`, engagement before it vs after."""
    sql, params = durations_sql(outcome, resolve_cutoff(store, settings), settings, filters)
    frame = store.df(_LANDMARK.format(durations=sql, descriptors=", ".join(f"f.{c}" for c in DESCRIPTORS)),
                     {**params, "landmark": day})
    if frame.empty or not frame.event.any():
        return None
    for col in DESCRIPTORS:
        frame[col] = frame[col].fillna(MISSING_LEVEL)
    counts = frame[["meetings", "checkins", "mentoring"]].astype(float)
    counts.columns = list(LAGGED)
    fit = _fit_cox(frame.days_after, frame.event, pd.concat([counts, _dummies(frame, adjust)], axis=1))
    terms = _cox_terms(fit, TERMS, f"per one more before day {day}")
    tiers = tier(frame.meetings)
    present = [t for _, _, t in TIERS if (tiers == t).any()]
    ref, others = present[0], present[1:]  # the lowest tier anyone is in is the baseline
    tier_terms: list[Term] = []
    if others:  # with everyone in one tier there is nothing to compare
        tier_x = pd.DataFrame({f"meetings {t}": (tiers == t).astype(float) for t in others})
        tier_fit = _fit_cox(frame.days_after, frame.event, pd.concat([tier_x, _dummies(frame, adjust)], axis=1))
        tier_terms = _cox_terms(tier_fit, {f"meetings {t}": f"{t} meetings vs {ref}" for t in others},
                                f"meetings before day {day}")
    curves = {t: survival.kaplan_meier(frame.days_after[tiers == t], frame.event[tiers == t])
              for _, _, t in TIERS if (tiers == t).any()}
    odds, odds_n = _odds_in_at(frame, counts, adjust, SIX_MONTHS)
    return Landmark(day, len(frame), int(frame.event.sum()), terms, tier_terms, odds, odds_n, curves)


def _odds_in_at(frame: pd.DataFrame, counts: pd.DataFrame, adjust: Sequence[str], day: int) -> tuple[list[Term], int]:
    """Logistic regression: still in at `day` (among those whose status then is known)."""
    known = (frame.days >= day) | frame.event
    if known.sum() < 20:
        return [], int(known.sum())
    y = (frame.days >= day)[known].astype(float)
    if y.nunique() < 2:
        return [], int(known.sum())
    X = sm.add_constant(pd.concat([counts, _dummies(frame, adjust)], axis=1)[known], has_constant="add")
    X = X.loc[:, (X.std() > 0) | (X.columns == "const")]
    fit = sm.Logit(y, X).fit(disp=0)
    ci = fit.conf_int()
    return [Term(label, float(np.exp(fit.params[col])), (float(np.exp(ci.loc[col, 0])), float(np.exp(ci.loc[col, 1]))),
                 float(fit.pvalues[col]), "or", f"odds of still being in at {day} days, per one more")
            for col, label in TERMS.items() if col in X.columns], int(known.sum())


# ---------------------------------------------------------------- GEE ---

@dataclass
class GEEFit:
    """Estimates of an independence-working-correlation GEE, with robust (sandwich) errors."""

    params: pd.Series
    bse: pd.Series

    def conf_int(self) -> pd.DataFrame:
        return pd.DataFrame({0: self.params - Z95 * self.bse, 1: self.params + Z95 * self.bse})

    @property
    def pvalues(self) -> pd.Series:
        return pd.Series(2 * stats.norm.sf(np.abs(self.params / self.bse)), index=self.params.index)


def gee_independence(y: pd.Series, X: pd.DataFrame, groups: pd.Series, family: sm.families.Family) -> GEEFit:
    """GEE with an independence working correlation: the GLM estimates with a sandwich
    covariance summed over clusters. Same numbers as statsmodels' GEE (tests check), but
    statsmodels' GEE takes ~30 s on two million person-weeks and this takes a few."""
    x = X.to_numpy(float)
    # Point estimates from the distinct (y, x) patterns with frequency weights: the same
    # estimates as the full GLM, from far fewer rows.
    patterns = pd.DataFrame(np.column_stack([y.to_numpy(float), x])).value_counts().reset_index()
    cells = patterns.to_numpy(float)
    fit = sm.GLM(cells[:, 0], cells[:, 1:-1], family=family, freq_weights=cells[:, -1]).fit()
    mu = family.link.inverse(x @ fit.params)
    # canonical links (logit, identity): the score of a row is x (y - mu), its weight var(mu)
    resid = y.to_numpy(float) - mu
    weight = family.variance(mu)
    bread = np.linalg.inv((x * weight[:, None]).T @ x)
    codes, _ = pd.factorize(groups)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    per_cluster = np.add.reduceat(x[order] * resid[order, None], starts, axis=0)
    cov = bread @ (per_cluster.T @ per_cluster) @ bread
    return GEEFit(pd.Series(fit.params, index=X.columns), pd.Series(np.sqrt(np.diag(cov)), index=X.columns))


def _gee_design(rows: pd.DataFrame, adjust: Sequence[str]) -> pd.DataFrame:
    X = sm.add_constant(pd.concat([rows[list(LAGGED)].astype(float), (rows.week / 4.345).rename("months"),
                                   _dummies(rows, adjust)], axis=1), has_constant="add")
    return X.loc[:, (X.std() > 0) | (X.columns == "const")]


def gee(pw: PersonWeeks, adjust: Sequence[str]) -> list[Term]:
    """Weekly reported use (weeks with a check-in) and craving, on the previous week's engagement."""
    frame = pw.frame
    terms: list[Term] = []
    use = frame[frame.used_any.notna()]
    if len(use) > 50 and use.used_any.astype(bool).nunique() == 2:
        fit = gee_independence(use.used_any.astype(float), _gee_design(use, adjust), use.participant_id,
                               sm.families.Binomial())
        terms += _gee_terms(fit, "use", "or", "odds of reporting use that week, per one more the week before")
    crave = frame[frame.craving.notna()]
    if len(crave) > 50:
        fit = gee_independence(crave.craving.astype(float), _gee_design(crave, adjust), crave.participant_id,
                               sm.families.Gaussian())
        terms += _gee_terms(fit, "craving", "diff", "change in mean craving (0-10), per one more the week before",
                            extra={"months": "craving: per month in follow-up"})
    return terms


def _gee_terms(fit: GEEFit, outcome: str, measure: str, unit: str, extra: dict[str, str] | None = None) -> list[Term]:
    ci = fit.conf_int()
    names = {col: f"{outcome}: {label}" for col, label in TERMS.items()} | (extra or {})
    terms = []
    for col, label in names.items():
        if col not in fit.params.index:
            continue
        kind = measure if col in TERMS else "diff"
        f = np.exp if kind == "or" else float
        terms.append(Term(label, float(f(fit.params[col])), (float(f(ci.loc[col, 0])), float(f(ci.loc[col, 1]))),
                          float(fit.pvalues[col]), kind, unit if col in TERMS else "change per month"))
    return terms


# -------------------------------------------------------------- naive ---

def naive(pw: PersonWeeks, store: Store, settings: OutcomeSettings, filters: Filters,
          adjust: Sequence[str]) -> list[Term]:
    """BIASED on purpose: total engagement over the whole follow-up against time in program."""
    outcome = pw.outcome
    totals = pw.frame.groupby("participant_id", observed=True).agg(
        meetings_prev=("meetings", "sum"), checkins_prev=("checkins", "sum"), mentoring_prev=("mentoring", "sum"))
    dur = durations(store, outcome, settings, filters).frame.set_index("participant_id")
    frame = dur.join(totals, how="inner")
    fit = _fit_cox(frame.days.to_numpy(), frame.event.to_numpy(),
                   pd.concat([frame[list(LAGGED)].astype(float), _dummies(frame, adjust)], axis=1))
    return _cox_terms(fit, TERMS, "per one more in total (biased)")


# ---------------------------------------------------------- everything ---

def analyse_engagement(store: Store, outcome: str, *, adjust: Sequence[str] = ("program",),
                       landmarks: Sequence[int] = LANDMARKS, settings: OutcomeSettings = OutcomeSettings(),
                       filters: Filters = Filters()) -> EngagementAnalysis:
    """Every analysis of the issue, for one outcome."""
    pw = person_weeks(store, outcome, settings, filters)
    if pw.frame.empty or not pw.frame.event.any():
        from analytics.survival_analysis import NoData
        raise NoData(f"no {outcome} events to analyse for {filters.describe()}")
    adjust = [c for c in adjust if pw.frame[c].nunique() > 1]
    warnings: list[str] = []
    tv, others = time_varying(store, outcome, adjust, settings, filters)
    marks = []
    for day in landmarks:
        try:
            lm = landmark(store, outcome, day, adjust, settings, filters)
        except ValueError as exc:  # e.g. too few events to estimate anything
            warnings.append(f"landmark {day}: not estimable ({exc})")
            continue
        if lm is None:
            warnings.append(f"landmark {day}: nobody left to analyse, or no events after it")
        else:
            marks.append(lm)
    return EngagementAnalysis(
        outcome=outcome, n=pw.participants, events=pw.events, person_weeks=len(pw.frame), adjusted_for=list(adjust),
        time_varying=tv, adjustment_terms=others, landmarks=marks, gee=gee(pw, adjust),
        naive=naive(pw, store, settings, filters, adjust), left_out=pw.left_out, warnings=warnings)


def format_text(a: EngagementAnalysis) -> str:
    def line(t: Term) -> str:
        name = {"hr": "HR", "or": "OR", "diff": "diff"}[t.measure]
        return f"  {t.term:<34} {name} {t.estimate:6.3f} ({t.ci[0]:.3f}-{t.ci[1]:.3f}), p = {t.p:.3g}  [{t.unit}]"

    out = [f"Outcome: {a.outcome}; {a.n:,} participants, {a.events:,} events, {a.person_weeks:,} person-weeks; "
           f"adjusted for {', '.join(a.adjusted_for) or 'nothing'}",
           "", "Time-varying Cox (previous week's engagement):"]
    out += [line(t) for t in a.time_varying]
    for lm in a.landmarks:
        out += ["", f"Landmark day {lm.day}: {lm.n:,} still in, {lm.events:,} events after it"]
        out += [line(t) for t in lm.terms + lm.tiers + lm.odds]
    if a.gee:
        out += ["", "Repeated measures (GEE, robust SE):"] + [line(t) for t in a.gee]
    out += ["", "NAIVE, BIASED (immortal time): total engagement vs total time in the program:"]
    out += [line(t) for t in a.naive]
    out += ["", EXPLANATION] + [f"Warning: {w}" for w in a.warnings]
    return "\n".join(out)
