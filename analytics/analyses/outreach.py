"""Who to call this week: each active participant's chance of leaving in the next 28 days,
learned from the program's own history, with the model's track record beside the plain
"longest silent first" ranking.

The model. Every 28 days back from the reference day (a landmark), each participant then
active (enrolled, no exit recorded, last contact fewer than inactivity_days ago) gives one
row: what was known at the landmark (days since the last contact; in-person group
meetings, online community meetings, check-ins and mentoring sessions in the 28 days up to
it; whether the last check-in in them reported use; whether in the first 90 days; the
program) and what happened in the 28 days after it (analytics.store.queries.outreach:
leaving by the retention definition, dated the day it becomes known: a recorded
dropped_out exit, or the day the silence reaches inactivity_days; other exits censor).
A Cox model (analytics.stats.tvcox.fit_counting_cox, Efron ties) on days since the
landmark, with the Breslow baseline, gives the risk of leaving within 28 days:
1 - exp(-H0(28) exp(x'b)). These stacked landmark windows are the landmark design of the
engagement analysis made dynamic (van Houwelingen 2007): the covariates are updated every
28 days, so the model says how this month's engagement goes with leaving next month.
It learns from the most recent windows holding at least 5,000 leavings (all the
history when fewer: OutreachSettings.learn_events). No number comes from the synthetic
generator's truths.

The reasons. The terms of a participant's x'b that raise their risk most against the
average of those ranked (b_k (x_k - mean_k) > 0), at most three, in words.

The track record (backtest). At each of the last 13 landmarks before the reference day
(a year), the model is refitted on the windows that had ended by then (nothing dated
after the cutoff enters: the windows end on or before it), the participants active then
are ranked, and the ranking is compared with who left in the next 28 days: AUC with a
DeLong CI robust to a participant appearing at several cutoffs (analytics.stats.
discrimination), calibration by tenth of predicted risk, and how many of the top 20
left. The same figures are given for "longest silent first", and the AUC difference.

Too little history (fewer than min_events leavings): no model; the list is ranked by days
since the last contact alone and labelled so (kind "days_silent").
"""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analytics.access.roles import PARTICIPANT_LEVEL, requires
from analytics.analyses.outreach_settings import OutreachSettings
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.filters import Filters
from analytics.safe_files import neutralise_frame
from analytics.stats.patterns import distinct_patterns
from analytics.stats.result import Estimate
from analytics.stats.discrimination import AUC, auc, auc_difference
from analytics.stats.tvcox import fit_counting_cox
from analytics.store.connection import Store
from analytics.store.queries.outreach import outreach_activity, outreach_people

__all__ = ["DEFINITION", "LIST_COLUMNS", "Backtest", "Model", "Outreach", "outreach", "outreach_csv",
           "outreach_text"]

NEW_DAYS = 90  # "in the first 90 days" of the program
TOP = 20  # "of the top 20 flagged, how many left"
_WORKERS = 2

# term -> (column of the window table, scale: the term is column / scale, unit)
TERMS = {
    "weeks_silent": ("days_silent", 7.0, "per week since the last contact"),
    "in_person_groups": ("in_person", 4.0, "per one more a week (last 4 weeks)"),
    "online_communities": ("online", 4.0, "per one more a week (last 4 weeks)"),
    "checkins": ("checkins", 4.0, "per one more a week (last 4 weeks)"),
    "mentoring": ("mentoring", 4.0, "per one more a week (last 4 weeks)"),
    "used_at_last_checkin": ("used_last", 1.0, "the last check-in (last 4 weeks) reported use"),
    "first_90_days": ("new", 1.0, f"in the first {NEW_DAYS} days of the program"),
}

DEFINITION = (
    "Active participants: enrolled, no exit recorded, and a contact (meeting attended, check-in or mentoring "
    "session; enrollment if none) within the last {inactivity} days. Risk of leaving in the next {horizon} days "
    "(by the retention definition: a recorded drop-out, or {inactivity} days without contact), from a Cox model "
    "fitted on this program's own history: every {horizon} days back, who was active, what they had done in the "
    "{horizon} days before, and whether they left in the {horizon} days after. Online community meetings are "
    "meetings of type online_community or modality online; the rest are in-person groups.")
FALLBACK = ("Too few leavings in the history to fit a model ({events} < {minimum}): ranked by days since the "
            "last contact alone (longest silent first).")

LIST_COLUMNS = ("rank", "participant_id", "program", "site", "risk_28d", "reasons", "days_since_contact",
                "last_contact", "in_person_4w", "online_4w", "checkins_4w", "mentoring_4w", "used_last_checkin",
                "enrolled_on")


@dataclass
class Model:
    """The fitted model (kind "fitted"), or the days-silent fallback (no terms)."""

    kind: str
    events: int
    person_weeks: float  # person-time of the windows it learned from, in weeks
    windows: int
    terms: list[Estimate]
    reference_program: str | None = None
    coef: np.ndarray | None = field(default=None, repr=False)
    names: list[str] = field(default_factory=list)
    baseline: float = float("nan")  # H0(horizon), Breslow

    def to_json(self) -> dict:
        return {"kind": self.kind, "events": self.events, "person_weeks": round(self.person_weeks, 1),
                "windows": self.windows, "terms": [t.to_json() for t in self.terms],
                "reference_program": self.reference_program}


@dataclass
class Ranking:
    """AUC (95% CI) and the mean number of the top 20 at each cutoff who left."""

    auc: AUC | None
    top20_left: float | None

    def to_json(self) -> dict:
        return {"auc": None if self.auc is None else self.auc.estimate,
                "auc_ci": None if self.auc is None else list(self.auc.ci), "top20_left": self.top20_left}


@dataclass
class Backtest:
    cutoffs: list[dt.date]
    model: Ranking
    days_silent: Ranking
    difference: AUC | None  # model AUC - days-silent AUC, paired
    calibration: pd.DataFrame  # tenth, n, predicted, observed
    per_cutoff: pd.DataFrame  # cutoff, active, left, events_in_fit, model_top20_left, days_silent_top20_left
    skipped: list[dt.date] = field(default_factory=list)  # cutoffs with too few events to fit
    models: list[Model] = field(default_factory=list, repr=False)  # the model fitted at each cutoff

    def to_json(self) -> dict:
        return {"cutoffs": [c.isoformat() for c in self.cutoffs], "model": self.model.to_json(),
                "days_silent": self.days_silent.to_json(),
                "difference": None if self.difference is None else {
                    "auc": self.difference.estimate, "ci": list(self.difference.ci)},
                "calibration": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                                for row in self.calibration.to_dict("records")],
                "per_cutoff": [{**{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()},
                                "cutoff": row["cutoff"].isoformat()} for row in self.per_cutoff.to_dict("records")],
                "skipped_cutoffs": [c.isoformat() for c in self.skipped]}


@dataclass
class Outreach:
    as_of: dt.date
    filters: Filters
    horizon: int
    inactivity_days: int
    model: Model
    backtest: Backtest
    participants: pd.DataFrame  # LIST_COLUMNS, highest risk first
    silent_no_exit: int  # not ranked: silent inactivity_days or more, no exit recorded

    @property
    def rule(self) -> str:
        text = DEFINITION.format(horizon=self.horizon, inactivity=self.inactivity_days)
        if self.model.kind == "days_silent":
            text += " " + FALLBACK.format(events=self.model.events, minimum=OutreachSettings().min_events)
        return text

    def to_json(self, top: int | None = None) -> dict:
        rows = self.participants if top is None else self.participants.head(top)
        return {"as_of": self.as_of.isoformat(), "filters": self.filters.describe(), "rule": self.rule,
                "model": self.model.to_json(), "backtest": self.backtest.to_json(),
                "participants": [{"rank": int(r.rank), "participant_id": r.participant_id,
                                  "risk_28d": None if pd.isna(r.risk_28d) else float(r.risk_28d),
                                  "reasons": list(r.reasons), "days_since_contact": int(r.days_since_contact)}
                                 for r in rows.itertuples()],
                "silent_no_exit": self.silent_no_exit}


# ---------------------------------------------------------------- windows ---

def windows(people: pd.DataFrame, activity: pd.DataFrame, horizon: int, inactivity: int) -> pd.DataFrame:
    """One row per participant and landmark s_j = as_of - horizon j at which they were active,
    plus, at j = 0, those with no exit recorded who are not active (active = False).

    From outreach_people and outreach_activity (days counted back from as_of), on dense
    (participant x window) arrays. Columns: person, j, days_silent (days since the last
    contact or enrollment at s_j), tenure_days, in_person, online, checkins, mentoring and
    used_last (the horizon days up to s_j), active, and for j >= 1 what happened in
    (s_j, s_j + horizon]: stop (day of the window, 1..horizon) and event (left: a recorded
    dropped_out exit, or the day the silence reaches `inactivity` with no contact before it;
    other exits censor at their day). Sorted by j, then participant id."""
    n = len(people)
    enrolled = people.enrolled_ago.to_numpy(np.int64)
    last_j = enrolled // horizon  # landmarks on or after enrollment: j = 0..last_j
    width = int(last_j.max()) + 2 if n else 2
    person, j = activity.person.to_numpy(np.int64), activity.j.to_numpy(np.int64)
    dense = {}
    for col, fill in (("in_person", 0), ("online", 0), ("checkins", 0), ("mentoring", 0), ("used_last", False),
                      ("last_ago", np.iinfo(np.int64).max), ("first_ago", -1)):
        grid = np.full((n, width), fill, dtype=bool if col == "used_last" else np.int64)
        grid[person, j] = activity[col].to_numpy()
        dense[col] = grid
    # the latest contact on or before s_j: the smallest last_ago over buckets j' >= j, or enrollment
    seen = np.minimum.accumulate(dense["last_ago"][:, ::-1], axis=1)[:, ::-1]
    landmark = horizon * np.arange(width)[None, :]  # s_j, in days before as_of
    days_silent = np.minimum(seen, enrolled[:, None]) - landmark
    exited = people.exited_ago.to_numpy(float)
    exited = np.where(np.isnan(exited), -1, exited).astype(np.int64)[:, None]
    out_by_landmark = exited >= landmark
    valid = np.arange(width)[None, :] <= last_j[:, None]
    active = valid & ~out_by_landmark & (days_silent < inactivity)
    keep = active.copy()
    keep[:, 0] |= valid[:, 0] & ~out_by_landmark[:, 0]
    jj, pp = np.nonzero(keep.T)  # j-major; people are sorted by id
    ds = days_silent[pp, jj]
    # the window after s_j (j >= 1): the first contact in bucket j - 1, an exit in it
    next_after = np.where(jj > 0, landmark[0, jj] - dense["first_ago"][pp, np.maximum(jj - 1, 0)], -1)
    next_after = np.where(dense["first_ago"][pp, np.maximum(jj - 1, 0)] < 0, -1, next_after)
    silent_at = inactivity - ds
    goes_silent = (jj > 0) & (silent_at <= horizon) & ((next_after < 0) | (next_after > silent_at))
    ex = exited[pp, 0]
    exit_at = landmark[0, jj] - ex
    exit_in = (jj > 0) & (ex >= 0) & (exit_at >= 1) & (exit_at <= horizon)
    by_exit = exit_in & (~goes_silent | (exit_at <= silent_at))
    stop = np.where(jj == 0, 0, np.where(by_exit, exit_at, np.where(goes_silent, silent_at, horizon)))
    event = np.where(by_exit, people.dropped_out.to_numpy(bool)[pp], goes_silent)
    return pd.DataFrame({
        "person": pp, "j": jj, "days_silent": ds, "tenure_days": enrolled[pp] - landmark[0, jj],
        **{col: dense[col][pp, jj] for col in ("in_person", "online", "checkins", "mentoring", "used_last")},
        "active": active[pp, jj], "stop": stop, "event": event.astype(bool),
        "program": pd.Categorical.from_codes(people.program.cat.codes.to_numpy()[pp], people.program.cat.categories)})


# ------------------------------------------------------------------ model ---

def _design(rows: pd.DataFrame, program_levels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The model's columns for window rows: TERMS, then program dummies for `program_levels`."""
    cols = {"new": (rows.tenure_days.to_numpy() < NEW_DAYS).astype(float),
            "used_last": rows.used_last.to_numpy(bool).astype(float)}
    X = [cols[col] if col in cols else rows[col].to_numpy(float) / scale for col, scale, _ in TERMS.values()]
    codes, categories = rows.program.cat.codes.to_numpy(), [str(c) for c in rows.program.cat.categories]
    X += [(codes == categories.index(level)).astype(float) if level in categories else np.zeros(len(rows))
          for level in program_levels]
    return np.column_stack(X), list(TERMS) + [f"program: {level}" for level in program_levels]


def _patterns(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows with the same (stop, event, covariates): one representative each and its count
    (replication weights: the same Cox fit as on every row, in about half the time)."""
    columns = [rows[c].to_numpy().astype(np.int64) for c in ("stop", "event", "days_silent", "in_person", "online",
                                                               "checkins", "mentoring", "used_last")]
    columns += [(rows.tenure_days.to_numpy() < NEW_DAYS).astype(np.int64),
                rows.program.cat.codes.to_numpy().astype(np.int64)]
    return distinct_patterns(columns)


def _fit(train: pd.DataFrame, min_events: int, horizon: int) -> Model:
    """Cox on days since the landmark, 28-day Breslow baseline; the fallback when too few events."""
    events = int(train.event.sum())
    person_weeks = float(train.stop.sum()) / 7
    if events < min_events:
        return Model("days_silent", events, person_weeks, int(train.j.nunique()), [])
    counts = train.program.value_counts()
    counts = counts[counts > 0]
    reference = str(min(counts.index[counts == counts.max()]))
    rep, weights = _patterns(train)
    rows = train.iloc[rep]
    X, names = _design(rows, sorted(str(level) for level in counts.index if str(level) != reference))
    varies = (X != X[:1]).any(axis=0)
    X, names = X[:, varies], [n for n, v in zip(names, varies) if v]
    stop, event, weights = rows.stop.to_numpy(np.int64), rows.event.to_numpy(bool), weights.astype(float)
    fit = fit_counting_cox(np.zeros(len(stop)), stop.astype(float), event, X, weights=weights, names=names)
    risk = weights * np.exp(X @ fit.coef)
    at_risk = np.cumsum(np.bincount(stop, weights=risk, minlength=horizon + 1)[::-1])[::-1]
    deaths = np.bincount(stop[event], weights=weights[event], minlength=horizon + 1)
    times = np.flatnonzero(deaths[: horizon + 1])
    baseline = float(np.sum(deaths[times] / at_risk[times]))
    units = {name: unit for name, (_, _, unit) in TERMS.items()}
    terms = [Estimate(n, float(h), (float(lo), float(hi)), float(p), "hr", units.get(n, f"against {reference}"))
             for n, h, lo, hi, p in zip(names, fit.hr, fit.ci[:, 0], fit.ci[:, 1], fit.p)]
    return Model("fitted", events, person_weeks, int(train.j.nunique()), terms, reference, fit.coef, names, baseline)


def _linear(model: Model, rows: pd.DataFrame) -> np.ndarray:
    """x'b of each row (columns as in the fit)."""
    levels = [n.removeprefix("program: ") for n in model.names if n.startswith("program: ")]
    X, names = _design(rows, levels)
    index = {n: k for k, n in enumerate(names)}
    return X[:, [index[n] for n in model.names]] @ model.coef


def predict(model: Model, rows: pd.DataFrame) -> np.ndarray:
    """Chance of leaving within the horizon; NaN for the fallback."""
    if model.kind != "fitted":
        return np.full(len(rows), np.nan)
    return 1.0 - np.exp(-model.baseline * np.exp(_linear(model, rows)))


# ---------------------------------------------------------------- reasons ---

def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _words(term: str, row) -> str:
    """A term of a participant's risk in plain words."""
    if term == "weeks_silent":
        d = int(row.days_silent)
        return f"no contact in {d // 7} weeks" if d >= 14 else f"no contact for {_plural(d, 'day')}"
    if term == "used_at_last_checkin":
        return "reported use at the last check-in" if row.used_last else "no use reported at the last check-in"
    if term == "first_90_days":
        return f"in the first {NEW_DAYS} days" if row.tenure_days < NEW_DAYS else f"past the first {NEW_DAYS} days"
    col, noun = {"in_person_groups": ("in_person", "in-person group meeting"),
                 "online_communities": ("online", "online community meeting"),
                 "checkins": ("checkins", "check-in"), "mentoring": ("mentoring", "mentoring session")}[term]
    n = int(getattr(row, col))
    return f"no {noun} in 4 weeks" if n == 0 else f"{_plural(n, noun)} in 4 weeks"


def reasons(model: Model, rows: pd.DataFrame, most: int = 3) -> list[list[str]]:
    """Per row: the (at most `most`) terms that raise the risk most against the average of
    `rows`, by b_k (x_k - mean_k), in words; only terms that raise it by 5% or more."""
    if model.kind != "fitted":
        return [[_words("weeks_silent", r)] for r in rows.itertuples()]
    own = [k for k, n in enumerate(model.names) if n in TERMS]
    X, names = _design(rows, [])
    index = {n: k for k, n in enumerate(names)}
    cols = [index[model.names[k]] for k in own]
    push = (X[:, cols] - X[:, cols].mean(axis=0)) * model.coef[own]
    out = []
    for row, contrib in zip(rows.itertuples(), push):
        order = [k for k in np.argsort(-contrib, kind="stable")[:most] if contrib[k] > np.log(1.05)]
        out.append([_words(model.names[own[k]], row) for k in order])
    return out


# --------------------------------------------------------------- backtest ---

def _top_left(order_score: np.ndarray, ids: np.ndarray, left: np.ndarray, top: int) -> int:
    """How many of the `top` highest scores (ties: by participant id) left."""
    order = np.lexsort((ids, -order_score))
    return int(left[order[:top]].sum())


def _ranking(scores: np.ndarray, left: np.ndarray, ids: np.ndarray, tops: list[int]) -> Ranking:
    if len(scores) == 0 or left.all() or not left.any():
        return Ranking(None, float(np.mean(tops)) if tops else None)
    return Ranking(auc(scores, left, ids), float(np.mean(tops)))


def _calibration(risk: np.ndarray, left: np.ndarray) -> pd.DataFrame:
    """Predicted vs observed by tenth of predicted risk (tenths of the pooled rows, by rank)."""
    if len(risk) == 0:
        return pd.DataFrame(columns=["tenth", "n", "predicted", "observed"])
    tenth = np.minimum((np.argsort(np.argsort(risk, kind="stable")) * 10) // len(risk), 9) + 1
    frame = pd.DataFrame({"tenth": tenth, "risk": risk, "left": left.astype(float)})
    out = frame.groupby("tenth").agg(n=("risk", "size"), predicted=("risk", "mean"), observed=("left", "mean"))
    return out.reset_index()


def _backtest(table: pd.DataFrame, as_of: dt.date, settings: OutreachSettings,
              fits: dict[int, Model]) -> Backtest:
    """At each of the last cutoffs k (fits[k]: the model fitted on the windows ended by then),
    score who was active then and compare with who left in the next horizon days."""
    h = settings.horizon_days

    def cutoff_of(k: int) -> dt.date:
        return as_of - dt.timedelta(days=h * k)

    ks = sorted(k for k in fits if k >= 1)
    results = []
    for k in ks:
        rows = table[(table.j == k) & table.active]
        results.append((k, fits[k], rows, predict(fits[k], rows)))
    fitted = [(k, m, rows, risk) for k, m, rows, risk in results if m.kind == "fitted"]
    used = fitted if fitted else results
    skipped = [cutoff_of(k) for k, m, _, _ in results if m.kind != "fitted"]
    per, pool_risk, pool_silent, pool_left, pool_ids, models = [], [], [], [], [], []
    for k, model, rows, risk in sorted(used, key=lambda r: r[0], reverse=True):
        models.append(model)
        left = rows.event.to_numpy(bool)
        ids = rows.person.to_numpy()  # people are numbered in id order
        silent = rows.days_silent.to_numpy(float)
        per.append({"cutoff": cutoff_of(k), "active": len(rows), "left": int(left.sum()),
                    "events_in_fit": model.events,
                    "model_top20_left": _top_left(risk, ids, left, TOP) if fitted else None,
                    "days_silent_top20_left": _top_left(silent, ids, left, TOP)})
        pool_risk.append(risk), pool_silent.append(silent), pool_left.append(left), pool_ids.append(ids)
    cat = (lambda parts, dtype: np.concatenate(parts) if parts else np.array([], dtype))
    risk, silent, left, ids = cat(pool_risk, float), cat(pool_silent, float), cat(pool_left, bool), cat(pool_ids, int)
    per_cutoff = pd.DataFrame(per, columns=["cutoff", "active", "left", "events_in_fit", "model_top20_left",
                                            "days_silent_top20_left"])
    model_rank = (_ranking(risk, left, ids, per_cutoff.model_top20_left.tolist()) if fitted
                  else Ranking(None, None))
    silent_rank = _ranking(silent, left, ids, per_cutoff.days_silent_top20_left.tolist())
    difference = (auc_difference(risk, silent, left, ids)
                  if fitted and model_rank.auc is not None else None)
    return Backtest(per_cutoff.cutoff.tolist(), model_rank, silent_rank, difference,
                    _calibration(risk, left) if fitted else _calibration(np.array([]), np.array([], bool)),
                    per_cutoff, skipped, models)


# ---------------------------------------------------------------- the list ---

def _ranked(model: Model, now: pd.DataFrame, people: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Active participants at the reference day, highest risk first (ties, and the fallback:
    longest silent first, then by id)."""
    risk = predict(model, now)
    who = people.iloc[now.person.to_numpy()]
    day = np.datetime64(as_of, "D")
    frame = pd.DataFrame({
        "participant_id": who.participant_id.to_numpy(str), "program": who.program.astype(str).to_numpy(),
        "site": who.site.astype(object).where(who.site.notna(), None).to_numpy(),
        "risk_28d": risk, "reasons": reasons(model, now), "days_since_contact": now.days_silent.to_numpy(int),
        "last_contact": pd.to_datetime(day - now.days_silent.to_numpy().astype("timedelta64[D]")).date,
        "in_person_4w": now.in_person.to_numpy(int), "online_4w": now.online.to_numpy(int),
        "checkins_4w": now.checkins.to_numpy(int), "mentoring_4w": now.mentoring.to_numpy(int),
        "used_last_checkin": now.used_last.to_numpy(bool),
        "enrolled_on": pd.to_datetime(day - who.enrolled_ago.to_numpy().astype("timedelta64[D]")).date})
    key = np.nan_to_num(risk, nan=-1.0)
    order = np.lexsort((now.person.to_numpy(), -frame.days_since_contact.to_numpy(), -key))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame[list(LIST_COLUMNS)]


@requires(PARTICIPANT_LEVEL)
def outreach(store: Store, filters: Filters = Filters(), *, as_of: dt.date | None = None,
             outcome_settings: OutcomeSettings = OutcomeSettings(),
             settings: OutreachSettings = OutreachSettings()) -> Outreach:
    """The ranked list of active participants at `as_of` (default: the latest date in the
    store), the model it comes from and its backtest. Two queries, then numpy; the model of
    today and those of the backtest's cutoffs are fitted on two threads."""
    as_of = as_of or resolve_cutoff(store, outcome_settings)
    h, inactivity = settings.horizon_days, outcome_settings.inactivity_days
    people = outreach_people(store, filters, as_of)
    table = windows(people, outreach_activity(store, filters, as_of, h), h, inactivity)
    last = int(table.j.max()) if len(table) else 0
    # cutoff k learns from windows that had ended by it: j >= k + 1 (k = 0: today's model)
    ks = [0] + [k for k in range(1, settings.backtest_cutoffs + 1) if k + 1 <= last]
    events = np.bincount(table.j.to_numpy(), weights=table.event.to_numpy(float), minlength=last + 2)

    def learn(k: int) -> Model:
        enough = np.flatnonzero(np.cumsum(events[k + 1:]) >= settings.learn_events)
        oldest = k + 1 + int(enough[0]) if len(enough) else last
        return _fit(table[(table.j >= k + 1) & (table.j <= oldest)], settings.min_events, h)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        fitted = list(pool.map(learn, ks))
    fits = dict(zip(ks, fitted))
    now = table[table.j == 0]
    return Outreach(as_of, filters, h, inactivity, fits[0], _backtest(table, as_of, settings, fits),
                    _ranked(fits[0], now[now.active], people, as_of), int((~now.active).sum()))


def outreach_csv(frame: pd.DataFrame) -> bytes:
    """The outreach list as UTF-8 CSV (header row, ISO dates, reasons joined by '; '), for download.
    It lists pseudonymous IDs only; it is for the program's own outreach, not for release."""
    out = frame.assign(reasons=[r if isinstance(r, str) else "; ".join(r) for r in frame.reasons])
    buf = io.StringIO()
    neutralise_frame(out).to_csv(buf, index=False, date_format="%Y-%m-%d", float_format="%.4f", lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def outreach_text(result: Outreach, top: int | None = None) -> str:
    """The command line's plain-text report."""
    m, b = result.model, result.backtest
    out = [f"Outreach as of {result.as_of} ({result.filters.describe()})", result.rule, ""]
    if m.kind == "fitted":
        out.append(f"Model: {m.events:,} leavings in {m.person_weeks:,.0f} person-weeks over {m.windows} windows")
        out += [f"  {t.term:<44} HR {t.estimate:6.3f} ({t.ci[0]:.3f}-{t.ci[1]:.3f}), p = {t.p:.3g}  [{t.unit}]"
                for t in m.terms]
    else:
        out.append(f"No model ({m.events} leavings): ranked by days since the last contact.")

    def line(name: str, r: Ranking) -> str:
        if r.auc is None:
            return f"  {name:<22} AUC -"
        return (f"  {name:<22} AUC {r.auc.estimate:.3f} ({r.auc.ci[0]:.3f}-{r.auc.ci[1]:.3f}); "
                f"of the top {TOP}, {r.top20_left:.1f} left on average")

    out += ["", f"Track record at {len(b.cutoffs)} past cutoffs ({', '.join(str(c) for c in b.cutoffs[:1])} "
                f"... {', '.join(str(c) for c in b.cutoffs[-1:])}), leaving in the next {result.horizon} days:",
            line("model", b.model), line("longest silent first", b.days_silent)]
    if b.difference is not None:
        d = b.difference
        out.append(f"  model - silent          AUC {d.estimate:+.3f} ({d.ci[0]:+.3f} to {d.ci[1]:+.3f})")
    rows = result.participants if top is None else result.participants.head(top)
    out += ["", f"{len(result.participants):,} active participants; {result.silent_no_exit:,} silent for "
                f"{result.inactivity_days}+ days with no exit recorded are not ranked.", ""]
    for r in rows.itertuples():
        risk = "  -  " if pd.isna(r.risk_28d) else f"{r.risk_28d:5.1%}"
        out.append(f"{r.rank:>4}. {r.participant_id:<12} {risk}  {'; '.join(r.reasons)}")
    return "\n".join(out)
