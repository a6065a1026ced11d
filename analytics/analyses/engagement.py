"""How peer engagement relates to retention and sobriety, without immortal-time bias.

People who stay longer have more time to attend, so comparing each person's total
engagement with how long they stayed makes engagement look protective even when it
does nothing (immortal-time bias). The analyses here only use engagement measured
before the time it is used to explain:

- time-varying Cox: the hazard of leaving (or relapsing) in a week against the
  previous week's in-person group meetings, online community meetings (meeting_type
  online_community or modality online), check-ins and mentoring sessions, adjusted for program
  and chosen descriptors; fitted on the person-week table merged into its distinct
  (interval, event, covariates) patterns with counts, with our exact Efron
  counting-process Cox (analytics.stats.tvcox), which equals R's coxph;
- landmark analyses at 30, 60 and 90 days: among those still in at the landmark,
  engagement before it against what happens after it (Cox, KM by tier, and the odds
  of still being in at 6 months by logistic regression);
- repeated measures (GEE, participants as clusters, independence working
  correlation, robust standard errors): reported use in a week, and craving, against
  the previous week's engagement. GEE assumes that missing weeks are unrelated to
  the outcome, which dropout may violate.

The naive estimate (total engagement against total time, meetings split the same way)
is computed too, labelled as biased, so the difference can be seen. The landmark and
repeated-measures models count all meetings together. Associations are not proof of cause.

Speed: analyse_engagement builds the person-week table once, as arrays
(analytics.outcomes.person_weeks, with each participant's engagement in the first landmark
days), and every model reads it: no model queries the store again. Large models run on
distinct covariate patterns with counts (the time-varying Cox with replication weights;
the GEE as a GLM on the patterns plus a sandwich summed over participants), which gives
the estimates of the full table (tests/test_engagement_speedups.py checks each against
the direct computation). The models run on two threads. The store-level functions
(time_varying, landmark) remain for single analyses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import linalg, sparse, stats
from threadpoolctl import threadpool_limits

from analytics.stats import survival
from analytics.stats.patterns import distinct_patterns
from analytics.stats.result import Estimate, reference_level
from analytics.access.roles import ANALYTICS, requires
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import DESCRIPTORS, OutcomeSettings
from analytics.outcomes.person_weeks import (
    DEFAULT_SETTINGS,
    ENGAGEMENT,
    LAGGED,
    NO_FILTERS,
    PersonWeeks,
    person_weeks,
)
from analytics.store.connection import Store
from analytics.stats.tvcox import fit_counting_cox

TERMS = {"meetings_prev": "attendance", "checkins_prev": "checkins", "mentoring_prev": "mentoring"}
# The time-varying and naive models split the meetings: in-person groups and online communities
# (person_weeks.ONLINE_MEETING_SQL), which may not go with staying alike.
SPLIT_TERMS = {"in_person_prev": "in_person_groups", "online_prev": "online_communities",
               "checkins_prev": "checkins", "mentoring_prev": "mentoring"}
LANDMARKS = (30, 60, 90)
TIERS = ((0, 0, "0"), (1, 3, "1-3"), (4, 7, "4-7"), (8, None, "8+"))
TIER_LABELS = [label for _, _, label in TIERS]
SIX_MONTHS = 182
_WORKERS = 2  # threads for the models (the machine this was tuned on has two cores)
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
class Landmark:
    day: int
    n: int
    events: int
    terms: list[Estimate]  # Cox: HR per meeting/check-in/session before the landmark
    tiers: list[Estimate]  # Cox: HR of each meetings tier against 0 meetings
    odds: list[Estimate]  # logistic: odds of still being in at 6 months
    odds_n: int
    curves: dict[str, survival.KaplanMeier] = field(default_factory=dict)
    # each participant's meetings tier (index into TIERS; -1: not in this landmark), in the order of
    # EngagementAnalysis.participant_ids (of the person-week table's people when fitted alone), so the
    # published counts can be perturbed from their members (EngagementAnalysis.landmark_people); one
    # byte a participant, as the analysis is cached (pickled); not in to_json
    tier_codes: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int8), repr=False)

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
    time_varying: list[Estimate]
    adjustment_terms: list[Estimate]
    landmarks: list[Landmark]
    gee: list[Estimate]
    naive: list[Estimate]
    left_out: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    # the standard deviation of each exposure: {"naive": {term: SD of the totals over participants},
    # "time_varying": {term: SD of the previous week's count over person-weeks}}
    exposure_sd: dict[str, dict[str, float]] = field(default_factory=dict)
    # the model's participants (n of them), their days in follow-up and whether each had the event
    # (events of them), so the published counts can be perturbed from their members
    # (analytics.publish.cellkey); not in to_json
    participant_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object), repr=False)
    days: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int32), repr=False)
    had_event: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool), repr=False)

    @property
    def event_ids(self) -> np.ndarray:
        """The participants of the model who had the event."""
        return self.participant_ids[self.had_event]

    def landmark_people(self, lm: Landmark) -> pd.DataFrame:
        """One row per participant in the landmark: participant_id, days_after (the landmark day),
        event, tier (a TIERS label)."""
        rows = np.flatnonzero(lm.tier_codes >= 0)
        return pd.DataFrame({"participant_id": self.participant_ids[rows],
                             "days_after": self.days[rows] - lm.day, "event": self.had_event[rows],
                             "tier": pd.Categorical.from_codes(lm.tier_codes[rows], TIER_LABELS)})

    def per_sd(self, which: str) -> list[Estimate]:
        """The naive or time-varying HRs per one standard deviation of their exposure: the two
        are per different units (a total, a weekly count), so they compare only on this scale."""
        sds = self.exposure_sd.get(which, {})
        terms = self.naive if which == "naive" else self.time_varying
        return [replace(t, estimate=t.estimate ** sds[t.term], ci=(t.ci[0] ** sds[t.term], t.ci[1] ** sds[t.term]),
                        unit=f"per one SD ({sds[t.term]:.2f})") for t in terms if t.term in sds]

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
            "exposure_sd": self.exposure_sd,
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

def _reference_and_levels(codes: np.ndarray, categories: Sequence[str],
                          weights: np.ndarray | None = None) -> tuple[str, list[str]]:
    """The reference (stats.result.reference_level: the most frequent recorded level) and
    the other levels present, sorted."""
    counts = np.bincount(codes, weights=weights, minlength=len(categories))
    ref = reference_level({str(c): counts[k] for k, c in enumerate(categories)})
    return ref, sorted(str(c) for k, c in enumerate(categories) if counts[k] > 0 and str(c) != ref)


def _dummy_columns(col: str, codes: np.ndarray, categories: Sequence[str],
                   weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Treatment dummies (name -> 0/1 column) for category codes, against _reference_and_levels.
    `weights`: how many rows each entry stands for when choosing the reference."""
    ref, levels = _reference_and_levels(codes, categories, weights)
    index = {str(c): k for k, c in enumerate(categories)}
    return {f"{col}: {lv} vs {ref}": (codes == index[lv]).astype(float) for lv in levels}


def _dummies(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Treatment dummies against the most frequent recorded level of each column."""
    out: dict[str, np.ndarray] = {}
    for col in columns:
        values = frame[col].astype("category")
        out |= _dummy_columns(col, values.cat.codes.to_numpy(), list(values.cat.categories))
    return pd.DataFrame(out, index=frame.index)


def _varies(X: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """X without its constant columns (except those in `keep`)."""
    values = X.to_numpy(float)
    varies = (values != values[:1]).any(axis=0) if len(values) else np.zeros(X.shape[1], bool)
    return X.loc[:, varies | X.columns.isin(list(keep))]


def _cox_terms(result, names: dict[str, str], unit: str) -> list[Estimate]:
    table = result.table().set_index("term")
    return [Estimate(label, float(table.hr[col]), (float(table.lo[col]), float(table.hi[col])), float(table.p[col]),
                 "hr", unit) for col, label in names.items() if col in table.index]


def _fit_cox(time: np.ndarray, event: np.ndarray, X: pd.DataFrame, weights: np.ndarray | None = None):
    """Ordinary Cox via the counting-process fit: entry 0, exit at day + 1 (positive length)."""
    X = _varies(X)
    return fit_counting_cox(np.zeros(len(time)), np.asarray(time, float) + 1, np.asarray(event, bool),
                            X.to_numpy(float), weights=weights, names=list(X.columns))


def _row_codes(pw: PersonWeeks, col: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Category codes of a participant descriptor for each person-week row (or `rows` of them)."""
    values = pw.people[col].cat
    person = pw.person if rows is None else pw.person[rows]
    return values.codes.to_numpy()[person], list(values.categories)


# ------------------------------------------------------- time-varying ---

def split_previous(pw: PersonWeeks) -> np.ndarray:
    """The previous week's engagement with the meetings split, (rows, 4) in SPLIT_TERMS order:
    in-person group meetings, online community meetings, check-ins, mentoring sessions."""
    prev, online = pw.previous, pw.online_previous
    return np.column_stack([prev[:, 0] - online, online, prev[:, 1], prev[:, 2]])


def split_totals(pw: PersonWeeks) -> np.ndarray:
    """Each participant's engagement over the whole follow-up, split as split_previous."""
    totals, online = pw.totals, pw.online_totals
    return np.column_stack([totals[:, 0] - online, online, totals[:, 1], totals[:, 2]])


def fit_time_varying(pw: PersonWeeks, adjust: Sequence[str]) -> tuple[list[Estimate], list[Estimate]]:
    """HR per one more in-person group meeting / online community meeting / check-in /
    mentoring session in the previous week: the person-week rows merged into distinct
    (interval, event, covariates) patterns with counts (replication weights: the same fit
    as on every row)."""
    codes = [_row_codes(pw, col) for col in adjust]
    prev = split_previous(pw)
    rep, counts = distinct_patterns([pw.week, pw.tstop - 7 * pw.week, pw.event, *prev.T, *(c for c, _ in codes)])
    columns = {name: prev[rep, j].astype(float) for j, name in enumerate(SPLIT_TERMS)}
    for col, (c, categories) in zip(adjust, codes):
        columns |= _dummy_columns(col, c[rep], categories)  # reference: the most frequent among patterns
    X = _varies(pd.DataFrame(columns))
    week = pw.week[rep].astype(float)
    fit = fit_counting_cox(7 * week, pw.tstop[rep].astype(float), pw.event[rep], X.to_numpy(float),
                           weights=counts.astype(float), names=list(X.columns))
    main = _cox_terms(fit, SPLIT_TERMS, "per one more a week (previous week)")
    others = _cox_terms(fit, {c: c for c in X.columns if c not in SPLIT_TERMS}, "")
    return main, others


def time_varying(store: Store, outcome: str, adjust: Sequence[str], settings: OutcomeSettings,
                 filters: Filters) -> tuple[list[Estimate], list[Estimate]]:
    """HR per one more meeting / check-in / mentoring session in the previous week."""
    return fit_time_varying(person_weeks(store, outcome, settings, filters), adjust)


# ----------------------------------------------------------- landmark ---

def _tier_codes(meetings: np.ndarray) -> np.ndarray:
    """Index into TIERS of each count: 0 -> "0", 1-3 -> "1-3", 4-7 -> "4-7", 8+ -> "8+"."""
    return np.searchsorted([low for low, _, _ in TIERS[1:]], np.asarray(meetings), side="right")


def tier(meetings: pd.Series) -> pd.Series:
    """0, 1-3, 4-7, 8+ meetings."""
    return pd.Series(np.array([label for _, _, label in TIERS], dtype=object)[_tier_codes(meetings)],
                     index=meetings.index)


def landmark_frame(pw: PersonWeeks, day: int) -> pd.DataFrame:
    """One row per participant still followed (and not yet failed) at `day`: descriptors,
    days_after the landmark, event, engagement in the first `day` days, days in follow-up."""
    if day not in pw.first_days:
        raise KeyError(f"no engagement counts for the first {day} days: build the table with "
                       f"person_weeks(..., first_days=({day},))")
    people = pw.people
    days, event = people.days.to_numpy(), people.event.to_numpy(bool)
    keep = np.flatnonzero((days >= day) & ~(event & (days == day)))
    counts = pw.first_days[day][keep]
    frame = people.iloc[keep][["participant_id", *DESCRIPTORS]].reset_index(drop=True)
    frame["days_after"] = days[keep] - day
    frame["event"] = event[keep]
    for j, name in enumerate(ENGAGEMENT):
        frame[name] = counts[:, j]
    frame["days"] = days[keep]
    frame["row"] = keep  # its row in pw.people
    return frame


def fit_landmark(pw: PersonWeeks, day: int, adjust: Sequence[str]) -> Landmark | None:
    """Among those still followed (and not yet failed) at `day`, engagement before it vs after."""
    frame = landmark_frame(pw, day)
    if frame.empty or not frame.event.any():
        return None
    counts = frame[list(ENGAGEMENT)].astype(float)
    counts.columns = list(LAGGED)
    adjusters = _dummies(frame, adjust)
    fit = _fit_cox(frame.days_after, frame.event, pd.concat([counts, adjusters], axis=1))
    terms = _cox_terms(fit, TERMS, f"per one more before day {day}")
    tiers = _tier_codes(frame.meetings.to_numpy())
    days_after, event = frame.days_after.to_numpy(), frame.event.to_numpy()
    present = [k for k in range(len(TIERS)) if (tiers == k).any()]
    labels = [TIERS[k][2] for k in present]
    ref, others = labels[0], labels[1:]  # the lowest tier anyone is in is the baseline
    tier_terms: list[Estimate] = []
    if others:  # with everyone in one tier there is nothing to compare
        tier_x = pd.DataFrame({f"meetings {TIERS[k][2]}": (tiers == k).astype(float) for k in present[1:]})
        tier_fit = _fit_cox(days_after, event, pd.concat([tier_x, adjusters], axis=1))
        tier_terms = _cox_terms(tier_fit, {f"meetings {t}": f"{t} meetings vs {ref}" for t in others},
                                f"meetings before day {day}")
    curves = {TIERS[k][2]: survival.kaplan_meier(days_after[tiers == k], event[tiers == k]) for k in present}
    odds, odds_n = _odds_in_at(frame, counts, adjusters, SIX_MONTHS)
    codes = np.full(len(pw.people), -1, dtype=np.int8)
    codes[frame.row.to_numpy()] = tiers
    return Landmark(day, len(frame), int(frame.event.sum()), terms, tier_terms, odds, odds_n, curves, codes)


def landmark(store: Store, outcome: str, day: int, adjust: Sequence[str], settings: OutcomeSettings,
             filters: Filters) -> Landmark | None:
    """Among those still followed (and not yet failed) at `day`, engagement before it vs after."""
    return fit_landmark(person_weeks(store, outcome, settings, filters, first_days=(day,)), day, adjust)


def _odds_in_at(frame: pd.DataFrame, counts: pd.DataFrame, adjusters: pd.DataFrame,
                day: int) -> tuple[list[Estimate], int]:
    """Logistic regression: still in at `day` (among those whose status then is known)."""
    known = (frame.days >= day) | frame.event
    if known.sum() < 20:
        return [], int(known.sum())
    y = (frame.days >= day)[known].astype(float)
    if y.nunique() < 2:
        return [], int(known.sum())
    X = sm.add_constant(pd.concat([counts, adjusters], axis=1)[known], has_constant="add")
    X = _varies(X, keep=["const"])
    fit = sm.Logit(y, X).fit(disp=0)
    ci = fit.conf_int()
    return [Estimate(label, float(np.exp(fit.params[col])), (float(np.exp(ci.loc[col, 0])), float(np.exp(ci.loc[col, 1]))),
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


def _gee_ondistinct_patterns(y: np.ndarray, cells: np.ndarray, cell_y: np.ndarray, counts: np.ndarray, row_cell: np.ndarray,
                     clusters: np.ndarray, n_clusters: int, family: sm.families.Family,
                     names: list[str]) -> GEEFit:
    """Independence GEE from distinct patterns of the rows: `cells` (patterns x terms), their y
    (`cell_y`: the rows' y, or their mean when patterns group x alone under an identity link)
    and counts; `row_cell` maps each row to its pattern, `clusters` each row to its cluster.
    Point estimates: the GLM on the patterns with frequency weights (the same as on every row).
    Robust covariance: bread^-1 meat bread^-1, the meat summed over clusters row by row."""
    params = _glm_irls(cells, cell_y, counts, family)
    mu = family.link.inverse(cells @ params)
    # canonical links (logit, identity): the score of a row is x (y - mu), its weight var(mu)
    bread = np.linalg.inv((cells * (counts * family.variance(mu))[:, None]).T @ cells)
    resid = y - mu[row_cell]
    # per cluster: the sum over its rows of x (y - mu), as (clusters x patterns residuals) @ patterns
    order = None if (np.diff(clusters) >= 0).all() else np.argsort(clusters, kind="stable")
    if order is not None:
        clusters, row_cell, resid = clusters[order], row_cell[order], resid[order]
    starts = np.r_[0, np.cumsum(np.bincount(clusters, minlength=n_clusters))]
    per_cluster = sparse.csr_matrix((resid, row_cell, starts), shape=(n_clusters, len(cells))) @ cells
    cov = bread @ (per_cluster.T @ per_cluster) @ bread
    return GEEFit(pd.Series(params, index=names), pd.Series(np.sqrt(np.diag(cov)), index=names))


def _glm_irls(X: np.ndarray, y: np.ndarray, counts: np.ndarray, family: sm.families.Family,
              max_iter: int = 100) -> np.ndarray:
    """GLM estimates by iteratively reweighted least squares, as statsmodels' GLM.fit (its
    start, weights and working response), with each weighted least-squares step solved by
    Cholesky on the normal equations rather than an SVD of X (several times faster), and
    iterated until the estimates stop changing (statsmodels stops once the deviance changes
    by less than 1e-8: the same estimates to about 1e-13). A singular design raises
    numpy.linalg.LinAlgError."""
    mu = family.starting_mu(y)
    eta = family.predict(mu)
    beta, last_step = np.zeros(X.shape[1]), np.inf
    for _ in range(max_iter):
        w = counts * family.weights(mu)
        z = eta + family.link.deriv(mu) * (y - mu)
        Xw = X * w[:, None]
        new = linalg.cho_solve(linalg.cho_factor(Xw.T @ X), Xw.T @ z)
        step = np.max(np.abs(new - beta)) / max(1.0, np.max(np.abs(new)))
        beta = new
        eta = X @ beta
        mu = family.link.inverse(eta)
        if step <= 1e-12 or (step <= 1e-8 and step >= last_step):  # converged, or at rounding level
            return beta
        last_step = step
    warnings.warn(f"the GEE's GLM did not converge in {max_iter} iterations", RuntimeWarning, stacklevel=3)
    return beta


def gee_independence(y: pd.Series, X: pd.DataFrame, groups: pd.Series, family: sm.families.Family) -> GEEFit:
    """GEE with an independence working correlation: the GLM estimates with a sandwich
    covariance summed over clusters. Same numbers as statsmodels' GEE (tests check), but
    statsmodels' GEE takes ~30 s on two million person-weeks and this well under one."""
    x = X.to_numpy(float)
    yv = y.to_numpy(float)
    _, first, row_cell, counts = np.unique(np.column_stack([yv, x]), axis=0, return_index=True,
                                           return_inverse=True, return_counts=True)
    clusters, labels = pd.factorize(groups)
    return _gee_ondistinct_patterns(yv, x[first], yv[first], counts.astype(float), row_cell.ravel(), clusters, len(labels),
                            family, list(X.columns))


def _gee_design(rows: pd.DataFrame, adjust: Sequence[str]) -> pd.DataFrame:
    """The GEE design of person-week rows (a person_weeks frame): const, the previous week's
    engagement, months in follow-up, adjustment dummies (constant columns dropped)."""
    X = sm.add_constant(pd.concat([rows[list(LAGGED)].astype(float), (rows.week / 4.345).rename("months"),
                                   _dummies(rows, adjust)], axis=1), has_constant="add")
    return _varies(X, keep=["const"])


def _gee_rows(pw: PersonWeeks, rows: np.ndarray, y: np.ndarray, adjust: Sequence[str],
              family: sm.families.Family) -> GEEFit:
    """gee_independence(y, _gee_design(frame rows), participant, family) on person-week `rows`,
    from the arrays. A binary y: the rows grouped into distinct (y, x) patterns with counts, as
    gee_independence does. Otherwise (Gaussian, identity link): grouped by x alone with the
    mean y, whose weighted least squares are the same as on every row."""
    prev, week = pw.previous[rows], pw.week[rows]
    codes = [_row_codes(pw, col, rows) for col in adjust]
    x_columns = [prev[:, 0], prev[:, 1], prev[:, 2], week, *(c for c, _ in codes)]
    binary = isinstance(family, sm.families.Binomial)
    first, counts, row_cell = distinct_patterns([y.astype(np.int64), *x_columns] if binary else x_columns, inverse=True)
    counts = counts.astype(float)
    cell_y = y[first] if binary else np.bincount(row_cell, weights=y, minlength=len(first)) / counts
    columns = {"const": np.ones(len(first))} | {name: prev[first, j].astype(float) for j, name in enumerate(LAGGED)}
    columns["months"] = week[first] / 4.345
    for col, (c, categories) in zip(adjust, codes):
        columns |= _dummy_columns(col, c[first], categories, weights=counts)  # reference: by person-weeks
    X = _varies(pd.DataFrame(columns), keep=["const"])
    return _gee_ondistinct_patterns(y, X.to_numpy(float), cell_y, counts, row_cell, pw.person[rows], len(pw.people),
                            family, list(X.columns))


def gee_use(pw: PersonWeeks, adjust: Sequence[str]) -> list[Estimate]:
    """Reported use in a week (weeks with a check-in) on the previous week's engagement."""
    use = np.flatnonzero(~np.isnan(pw.used_any))
    if len(use) <= 50 or len(np.unique(pw.used_any[use])) < 2:
        return []
    fit = _gee_rows(pw, use, pw.used_any[use], adjust, sm.families.Binomial())
    return _gee_terms(fit, "use", "or", "odds of reporting use that week, per one more the week before")


def gee_craving(pw: PersonWeeks, adjust: Sequence[str]) -> list[Estimate]:
    """Mean craving in a week (weeks with a craving reported) on the previous week's engagement."""
    crave = np.flatnonzero(~np.isnan(pw.craving))
    if len(crave) <= 50:
        return []
    fit = _gee_rows(pw, crave, pw.craving[crave], adjust, sm.families.Gaussian())
    return _gee_terms(fit, "craving", "diff", "change in mean craving (0-10), per one more the week before",
                      extra={"months": "craving: per month in follow-up"})


def gee(pw: PersonWeeks, adjust: Sequence[str]) -> list[Estimate]:
    """Weekly reported use (weeks with a check-in) and craving, on the previous week's engagement."""
    return gee_use(pw, adjust) + gee_craving(pw, adjust)


def _gee_terms(fit: GEEFit, outcome: str, measure: str, unit: str, extra: dict[str, str] | None = None) -> list[Estimate]:
    ci = fit.conf_int()
    names = {col: f"{outcome}: {label}" for col, label in TERMS.items()} | (extra or {})
    terms = []
    for col, label in names.items():
        if col not in fit.params.index:
            continue
        kind = measure if col in TERMS else "diff"
        f = np.exp if kind == "or" else float
        terms.append(Estimate(label, float(f(fit.params[col])), (float(f(ci.loc[col, 0])), float(f(ci.loc[col, 1]))),
                          float(fit.pvalues[col]), kind, unit if col in TERMS else "change per month"))
    return terms


# -------------------------------------------------------------- naive ---

def naive(pw: PersonWeeks, adjust: Sequence[str]) -> list[Estimate]:
    """BIASED on purpose: total engagement over the whole follow-up against time in program."""
    followed = np.flatnonzero(pw.weeks_per_person > 0)
    frame = pw.people.iloc[followed].reset_index(drop=True)
    totals = pd.DataFrame(split_totals(pw)[followed].astype(float), columns=list(SPLIT_TERMS))
    fit = _fit_cox(frame.days.to_numpy(), frame.event.to_numpy(), pd.concat([totals, _dummies(frame, adjust)], axis=1))
    return _cox_terms(fit, SPLIT_TERMS, "per one more in total (biased)")


# ---------------------------------------------------------- everything ---

@requires(ANALYTICS)
def analyse_engagement(store: Store, outcome: str, *, adjust: Sequence[str] = ("program",),
                       landmarks: Sequence[int] = LANDMARKS, settings: OutcomeSettings = DEFAULT_SETTINGS,
                       filters: Filters = NO_FILTERS) -> EngagementAnalysis:
    """Every analysis of the issue, for one outcome, from one person-week table.

    The models are independent and only read the table, so they run on two threads (numpy,
    LAPACK and DuckDB release the GIL for their heavy parts); the results do not depend on it.
    BLAS is held to one thread meanwhile: two model threads each spawning a BLAS thread per
    core oversubscribe the machine (at 100k: 2.1-2.2 s instead of 2.5-3.4 s cold)."""
    pw = person_weeks(store, outcome, settings, filters, first_days=landmarks)
    if pw.rows == 0 or not pw.event.any():
        from analytics.analyses.survival import NoData
        raise NoData(f"no {outcome} events to analyse for {filters.describe()}")
    model = pw.weeks_per_person > 0
    followed = pw.people[model]
    adjust = [c for c in adjust if followed[c].nunique() > 1]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        use, craving = pool.submit(gee_use, pw, adjust), pool.submit(gee_craving, pw, adjust)
        tv = pool.submit(fit_time_varying, pw, adjust)
        marks = {day: pool.submit(fit_landmark, pw, day, adjust) for day in landmarks}
        biased = pool.submit(naive, pw, adjust)
    notes: list[str] = []
    landmark_results = []
    for day, job in marks.items():
        try:
            lm = job.result()
        except ValueError as exc:  # e.g. too few events to estimate anything
            notes.append(f"landmark {day}: not estimable ({exc})")
            continue
        if lm is None:
            notes.append(f"landmark {day}: nobody left to analyse, or no events after it")
        else:  # its tiers in the order of the model's participants (those in it are all in the model)
            landmark_results.append(replace(lm, tier_codes=lm.tier_codes[model]))
    main, others = tv.result()
    return EngagementAnalysis(
        outcome=outcome, n=pw.participants, events=pw.events, person_weeks=pw.rows, adjusted_for=list(adjust),
        time_varying=main, adjustment_terms=others, landmarks=landmark_results,
        gee=use.result() + craving.result(), naive=biased.result(), left_out=pw.left_out, warnings=notes,
        exposure_sd=exposure_sds(pw), participant_ids=followed.participant_id.to_numpy(object),
        days=followed.days.to_numpy(np.int32), had_event=followed.event.to_numpy(bool))


def exposure_sds(pw: PersonWeeks) -> dict[str, dict[str, float]]:
    """SD of each engagement total over the participants followed (the naive exposure) and
    of each previous-week count over the person-weeks (the time-varying exposure)."""
    followed = pw.weeks_per_person > 0
    totals = split_totals(pw)[followed].std(axis=0, ddof=1) if followed.sum() > 1 else np.full(4, np.nan)
    weekly = split_previous(pw).std(axis=0, ddof=1) if pw.rows > 1 else np.full(4, np.nan)
    names = list(SPLIT_TERMS.values())
    return {"naive": {n: float(v) for n, v in zip(names, totals) if np.isfinite(v)},
            "time_varying": {n: float(v) for n, v in zip(names, weekly) if np.isfinite(v)}}


def format_text(a: EngagementAnalysis) -> str:
    def line(t: Estimate) -> str:
        name = {"hr": "HR", "or": "OR", "diff": "diff"}[t.measure]
        return f"  {t.term:<34} {name} {t.estimate:6.3f} ({t.ci[0]:.3f}-{t.ci[1]:.3f}), p = {t.p:.3g}  [{t.unit}]"

    out = [(f"Outcome: {a.outcome}; {a.n:,} participants, {a.events:,} events, {a.person_weeks:,} person-weeks; "
            f"adjusted for {', '.join(a.adjusted_for) or 'nothing'}"),
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
