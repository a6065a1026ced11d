"""The outcome report for funders: a PDF with a chart and a table per section, every count
protected (analytics.publish.privacy), and a methods appendix.

Why its own module: the report gathers numbers from the same analytics functions the
pages use (kpis, survival_analysis, cohorts) and turns them into exports
(analytics.publish.exports), so a number in the PDF equals the one on screen. `build` collects
the sections; `render_pdf` lays them out with reportlab, charts kept as vectors (plotly
SVG drawn through svglib), so nothing needs the network.

Populations: people served and engagement dose count activity *in* the reporting period;
retention and sobriety follow the participants *enrolled in* the period, up to the data
cutoff (so 180-day retention of a recent period may not be known yet); cohorts compare
every enrollment quarter up to the period's end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np
import pandas as pd

from analytics.access import roles as access
from analytics.access import audit
from analytics.analyses import cohorts
from analytics.publish import exports
from analytics.analyses import kpis
from analytics.publish import privacy
from analytics.charts.render import ChartMeta
from analytics.charts.director import cohort_heatmap, weekly_trends_figure
from analytics.charts.exports import draws_a_value, message_figure
from analytics.charts.report import cohort_bars, dose_figure, use_figure
from analytics.publish.exports import ChartExport, TooFew
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret
from analytics.analyses.survival import NoData, SurvivalAnalysis, analyse
from analytics.charts.survival import life_table_figure
from analytics.outcomes.definitions import durations
from analytics.publish import cellkey, disclosure
from analytics.publish.disclosure import LifeTable

__all__ = ["Report", "Section", "build", "render_pdf", "write_report"]

Progress = Callable[[str], None]
RETENTION_TIMES = (30, 90, 180)
SOBRIETY_TIMES = (90, 180, 365)
SOFTWARE = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "plotly", "kaleido",
            "reportlab", "svglib")


@dataclass
class Section:
    title: str
    text: str
    exports: list[ChartExport] = field(default_factory=list)


@dataclass
class Report:
    period: Period
    filters: Filters
    cutoff: dt.date
    threshold: int
    generated: dt.datetime
    sections: list[Section] = field(default_factory=list)
    methods: list[tuple[str, str]] = field(default_factory=list)
    life_tables: dict[str, LifeTable] = field(default_factory=dict)  # the protected counts behind the curves
    organisation: str = ""

    @property
    def scope(self) -> str:
        return f"Reporting period {self.period.start} to {self.period.end}; {self.filters.describe()}"

    def headlines(self) -> list[tuple[str, str]]:
        """3-5 numbers for the cover, read from the protected tables (so hidden stays hidden)."""
        tables = {s.title: s.exports[0].table for s in self.sections if s.exports}
        out = []

        def cell(title: str, col: str) -> object:
            p = tables.get(title)
            if p is None or col not in p.values.columns:
                return None
            v = p.display().iloc[-1][col]
            return None if v is None or (isinstance(v, float) and v != v) else v

        for label, title, col, fmt in (("people served (active in the period)", "People served", "active", "{:,}"),
                                       ("new enrollments", "People served", "new_enrollments", "{:,}"),
                                       ("meetings per active participant", "Engagement dose", "meetings_per_active",
                                        "{:.1f}"),
                                       ("still in the program at 90 days", "Retention", "survival_90", "{:.0%}"),
                                       ("median days sober", "Sobriety", "median_days", "{:.0f}")):
            v = cell(title, col)
            if v is not None:
                out.append((v if isinstance(v, str) else fmt.format(v), label))
        return out


# --- sections -------------------------------------------------------------------------

def _meta(report: Report, title: str, definition: str, n: str, period: str | None = None) -> ChartMeta:
    return ChartMeta(title, definition, n, period or report.scope, report.cutoff)


def _n_text(protected: privacy.Protected, column: str, row: object, what: str) -> str:
    value = protected.display().loc[row, column]
    return f"n = {value:,} {what}" if isinstance(value, int) else f"n = {value} {what}"


def _program_table(report: Report, store: Store) -> pd.DataFrame:
    """Per program (and All): the counts of people perturbed by the cell key method first
    (analytics.publish.cellkey; suppressed later), the counts of meetings and check-ins exact."""
    table = kpis.by_program(store, report.filters, report.period, keyed=True).set_index("program")
    table[_KEYS] = table[_KEYS].astype(object)  # 64-bit keys as Python ints: never through float
    if len(table) > 1:
        table.loc[exports.ALL_ROW] = table.drop(columns=_KEYS).sum(numeric_only=True)
        weights = table.loc[table.index != exports.ALL_ROW, "checkins"]
        for col in ("mean_craving", "mean_mood"):
            rows = table.loc[table.index != exports.ALL_ROW, col]
            table.loc[exports.ALL_ROW, col] = (rows * weights).sum() / weights.sum() if weights.sum() else None
    return cellkey.perturb_columns(table, PEOPLE_COUNTS, _total(table))


PEOPLE_COUNTS = ("new_enrollments", "active", "mentored", "checked_in")  # perturbed in the report
_KEYS = [f"{c}_key" for c in PEOPLE_COUNTS]


def people_served(report: Report, store: Store, table: pd.DataFrame) -> Section:
    served = privacy.protect(table[["new_enrollments", "active"]], counts=["new_enrollments", "active"],
                             total_row=_total(table), threshold=report.threshold,
                             perturbed=["new_enrollments", "active"])
    trends = cellkey.perturb_columns(kpis.weekly_trends(store, report.filters, report.period, keyed=True),
                                     ["active", "new_enrollments"])
    weekly = privacy.protect(trends[["active"]], counts=["active"], threshold=report.threshold, perturbed=["active"])
    row = _total(table) or table.index[0]
    meta = _meta(report, "People served", kpis.DEFINITIONS["active"] + " " + kpis.DEFINITIONS["new_enrollments"],
                 _n_text(served, "active", row, "active participants"))
    fig = weekly_trends_figure(trends.assign(active=weekly.values["active"]), report.period, report.filters,
                               columns=("active",))
    return Section("People served", "New enrollments and active participants in the reporting period, by "
                   "program; the chart shows active participants week by week (weeks with fewer than the "
                   "threshold are left blank).", [ChartExport("people-served", meta, served, fig)])


def engagement_dose(report: Report, table: pd.DataFrame) -> Section:
    cols = ["active", "meetings", "checkins", "mentoring_sessions", "mentored"]
    dose = table[cols].copy()
    for c in ("meetings", "checkins", "mentoring_sessions"):
        dose[f"{c}_per_active"] = dose[c] / dose["active"].where(dose["active"] > 0)
    p = privacy.protect(dose, counts=cols, total_row=_total(table), threshold=report.threshold,
                        perturbed=["active", "mentored"], derived={f"{c}_per_active": [c, "active"] for c in ("meetings", "checkins",
                                                                             "mentoring_sessions")})
    meta = _meta(report, "Engagement dose", kpis.BY_PROGRAM_DEFINITION + " Per active participant = the count "
                 "divided by the active participants.", _n_text(p, "active", _total(table) or table.index[0],
                                                                  "active participants"))
    return Section("Engagement dose", "Meetings attended, check-ins and mentoring sessions in the reporting "
                   "period, in total and per active participant.",
                   [ChartExport("engagement-dose", meta, p, dose_figure(p.values, meta.title))])


def _enrolled(report: Report) -> Filters:
    f = report.filters
    lo = max(f.enrolled_from, report.period.start) if f.enrolled_from else report.period.start
    hi = min(f.enrolled_to, report.period.end) if f.enrolled_to else report.period.end
    return dataclasses.replace(f, enrolled_from=lo, enrolled_to=hi)


SHORT_METHOD = "Protected life table; see Methods."  # the method in full: once, in the appendix (and in files)
EMPTY_CHART = ("Nothing to draw: every value of this chart would rest on fewer than {t} people, or on people "
               "not followed that long yet, so none is published. The table below shows what can be.")
CANDIDATE_DAYS = (30, 90, 180, 270, 365, 545, 730)  # the life tables' intervals start here (merged if needed)


def survival_section(report: Report, store: Store, outcome: str, times: tuple[int, ...],
                     settings: OutcomeSettings, hide: tuple[str, ...] = ()) -> tuple[Section, LifeTable | None]:
    """One outcome per program as a protected life table (analytics.publish.disclosure): the chart, its
    numbers at risk, the table and the values reused in "Outcomes by program" all come from its counts.
    ``hide``: programs whose count of participants enrolled in the period is hidden elsewhere."""
    title, what = {"retention": ("Retention", "still in the program"),
                   "sobriety": ("Sobriety", "sober (no use reported)")}[outcome]
    d = durations(store, outcome, settings, _enrolled(report))
    keys = cellkey.record_keys(cell_key_secret(store), d.frame.participant_id)
    if _published_n(keys) < report.threshold:
        why = "nobody in this selection has follow-up for this outcome" if d.n == 0 else (
            f"fewer than {report.threshold} participants in this selection")
        return Section(title, f"Not reported: {why}."), None
    frame = d.frame
    lt = disclosure.life_table(frame.days.to_numpy(), frame.event.to_numpy(), frame.program.to_numpy(),
                               (*CANDIDATE_DAYS, *times), report.threshold, hide=hide, keys=keys)
    p = disclosure.protected_table(lt, times)
    definition = d.describe().split(";")[0]
    note = (definition[:1].upper() + definition[1:] + ". " + SHORT_METHOD + " Blank: not published (not followed that long, "
            f"or a step would show fewer than {report.threshold} people).")
    meta = _meta(report, f"{title}: share {what} at {', '.join(map(str, times))} days", note,
                 _n_text(p, "n", p.values.index[-1], "participants"), f"Enrolled {report.period.start} to "
                 f"{report.period.end}")
    fig = life_table_figure(lt, meta.title, outcome, max(times), "")
    text = (f"Participants enrolled in the reporting period, followed to the data cutoff: the share {what} "
            f"{', '.join(map(str, times))} days after the start, the number still followed at each time and "
            "the median (days until half have had the event). A blank cell is not published: not followed that "
            f"long yet, or a value that would rest on fewer than {report.threshold} people. Never read a blank "
            "as 0%.")
    return Section(title, text, [ChartExport(f"{outcome}-survival", meta, p, fig, notes=[lt.method()])]), lt


def _published_n(keys: np.ndarray) -> int:
    """How many people the life table would publish for everyone in it: the count perturbed first,
    so a selection is reported only when its published count reaches the threshold."""
    return cellkey.published(keys)


COHORT_MONTH_SETS = ((1, 3, 6, 12), (3, 6, 12), (1, 6, 12), (1, 3, 12), (1, 3, 6), (6, 12), (3, 12), (3, 6),
                     (1, 12), (1, 6), (1, 3), (12,), (6,), (3,))  # most months first
MOST_PUBLISHED = 0.5  # a choice is taken when at least this share of its cohort values can be published


@dataclass(frozen=True)
class CohortChoice:
    """Enrollment cohorts (runs of adjacent quarters) at ``months``, as a protected life table;
    ``cells``: the cohort values that could be shown (cohort shown, every member followed that
    long), ``published``: those the life table publishes."""

    months: tuple[int, ...]
    table: LifeTable
    known: dict[str, set[int]]
    published: int
    cells: int

    @property
    def days(self) -> dict[int, int]:
        return {m: cohorts.month_day(m) for m in self.months}

    @property
    def enough(self) -> bool:
        return self.cells > 0 and self.published >= MOST_PUBLISHED * self.cells

    @property
    def cohorts_shown(self) -> int:
        """Cohorts with at least one value published."""
        return sum(1 for g in self.table.groups if g != disclosure.ALL and self.known[g] & set(self.table.grid(g)))

    @property
    def quarters_only(self) -> bool:
        return all(" to " not in g for g in self.table.groups)


def cohort_section(report: Report, store: Store, settings: OutcomeSettings) -> Section:
    """Retention by enrollment cohort, from the same kind of protected life table (month days as
    the grid); a month is blank until every member of the cohort has been followed that long.
    The cohorts (enrollment quarters, merged where needed) and months: `choose_cohorts`."""
    f = report.filters
    hi = min(f.enrolled_to, report.period.end) if f.enrolled_to else report.period.end
    d = durations(store, "retention", settings, dataclasses.replace(f, enrolled_to=hi))
    keys = cellkey.record_keys(cell_key_secret(store), d.frame.participant_id)
    if _published_n(keys) < report.threshold:
        return Section("Cohort comparison", "Not reported: fewer than the threshold enrolled up to the "
                       "period's end.")
    choice = choose_cohorts(d.frame, keys, report.cutoff, settings.inactivity_days, report.threshold)
    lt, days, names = choice.table, choice.days, _month_names(choice.days)
    report.life_tables["cohorts"] = lt
    p = disclosure.protected_table(lt, tuple(days.values()), prefix="retained", known=choice.known)
    p = dataclasses.replace(p, values=p.values.rename(columns=names), primary=p.primary.rename(columns=names),
                            complementary=p.complementary.rename(columns=names),
                            derived=p.derived.rename(columns=names),
                            counts=tuple(names.get(c, c) for c in p.counts),
                            perturbed=tuple(names.get(c, c) for c in p.perturbed))
    p = _columns(p, [c for c in p.values.columns if c != "median_days"])
    meta = _meta(report, "Retention by enrollment cohort", r_definition(settings) + " " + SHORT_METHOD,
                 _n_text(p, "n", p.values.index[-1], "participants"), f"Enrolled up to {hi}; {f.describe()}")
    text = (f"Share still in the program {_and(choice.months)} months after enrolling, per enrollment cohort. "
            f"{_choice_text(choice)} Blank: not every member followed that long yet, or not publishable (fewer "
            f"than the threshold behind it). Cohorts with fewer than {report.threshold} participants show n as "
            f"\"{privacy.small_marker(report.threshold)}\" (or \"*\") and nothing else.")
    fig = cohort_bars(p.values, [f"month_{m}" for m in choice.months], meta.title, "Enrollment cohort")
    return Section("Cohort comparison", text, [ChartExport("cohorts", meta, p, fig, notes=[lt.method()])])


def choose_cohorts(frame: pd.DataFrame, keys: np.ndarray, cutoff: dt.date, inactivity_days: int,
                   threshold: int) -> CohortChoice:
    """Enrollment quarters, each merged with the next until the cohort's own counts can publish every
    month it has been followed for (global recoding, as statistical agencies coarsen a category rather
    than suppress its cells): quarters of ~100 people rarely hold 11 censorings in a month, so kept
    apart most of their cells merge away and a funder would see a near-empty chart. The protection
    is the life table's either way; only the grouping changes. Tried for each set of months: of the
    choices whose life table publishes at least half of the values that could be shown, the one with
    the most cohorts carrying a value, then the most values, then the most months (else the one
    publishing the most values)."""
    choices = []
    for months in COHORT_MONTH_SETS:
        days = [cohorts.month_day(m) for m in months]
        labels = _merged_quarters(frame, keys, days, cutoff, inactivity_days, threshold)
        choices.append(_cohort_choice(frame.assign(cohort=labels), months, keys, cutoff, inactivity_days,
                                      threshold))
        if choices[0].quarters_only and choices[0].published == choices[0].cells > 0:
            return choices[0]  # every quarter, every month, all published: nothing can do better
    enough = [c for c in choices if c.enough]
    if enough:
        return max(enough, key=lambda c: (c.cohorts_shown, c.published, len(c.months)))
    most = max(choices, key=lambda c: (c.published, len(c.months)))
    if most.published:
        return most
    return _cohort_choice(frame.assign(cohort=frame.cohort_quarter), COHORT_MONTH_SETS[0], keys, cutoff,
                          inactivity_days, threshold)  # nothing publishable: plain quarters, their n


def _followed(starts: pd.Series, cutoff: dt.date) -> int:
    """Days the cohort's last enrolled member has been followed by the cutoff."""
    return (cutoff - pd.to_datetime(starts).max().date()).days


def _merged_quarters(frame: pd.DataFrame, keys: np.ndarray, days: list[int], cutoff: dt.date,
                     inactivity_days: int, threshold: int) -> pd.Series:
    """Per participant the cohort label: runs of adjacent enrollment quarters ("2024-Q2 to 2024-Q4"),
    a run closed once its own life table publishes every day its members have all been followed
    for; the quarters not yet followed for any of ``days`` form the last run."""
    runs: list[list[str]] = [[]]
    for q in sorted(frame.cohort_quarter.unique()):
        runs[-1].append(q)
        members = frame.cohort_quarter.isin(runs[-1]).to_numpy()
        known = {d for d in days if d + inactivity_days <= _followed(frame.start[members], cutoff)}
        if known and len(runs) > 0 and _publishes(frame[members], keys[members], days, known, threshold):
            runs.append([])
    if not runs[-1]:
        runs.pop()
    elif len(runs) > 1 and _no_known(frame, runs[-1], days, cutoff, inactivity_days) is False:
        runs[-2] += runs.pop()  # an unfinished run that could show values joins the one before
    label = {q: (run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}") for run in runs for q in run}
    return frame.cohort_quarter.map(label)


def _no_known(frame: pd.DataFrame, run: list[str], days: list[int], cutoff: dt.date, inactivity_days: int) -> bool:
    members = frame.cohort_quarter.isin(run)
    return all(d + inactivity_days > _followed(frame.start[members], cutoff) for d in days)


def _publishes(sub: pd.DataFrame, keys: np.ndarray, days: list[int], known: set[int], threshold: int) -> bool:
    """Whether the members' own life table (alone, no complements) publishes every ``known`` day."""
    if len(sub) < threshold:
        return False
    own = disclosure.life_table(sub.days.to_numpy(), sub.event.to_numpy(), ["c"] * len(sub), days, threshold,
                                keys=keys)
    return known <= set(own.grid("c"))


def _cohort_choice(frame: pd.DataFrame, months: tuple[int, ...], keys: np.ndarray, cutoff: dt.date,
                   inactivity_days: int, threshold: int) -> CohortChoice:
    days = [cohorts.month_day(m) for m in months]
    followed = {g: _followed(sub.start, cutoff) for g, sub in frame.groupby("cohort")}
    followed[disclosure.ALL] = min(followed.values())
    known = {g: {d for d in days if d + inactivity_days <= followed[g]} for g in followed}
    lt = disclosure.life_table(frame.days.to_numpy(), frame.event.to_numpy(), frame.cohort.to_numpy(), days,
                               threshold, keys=keys)
    shown = [g for g in lt.groups if g != disclosure.ALL or len(lt.groups) == 1]
    cells = sum(len(known[g]) for g in shown)
    published = sum(len(known[g] & set(lt.grid(g))) for g in shown)
    return CohortChoice(months, lt, known, published, cells)


def _choice_text(c: CohortChoice) -> str:
    """The caption's statement of the grouping chosen, and why."""
    if not c.published:
        return ("No cohort value can be published yet: no cohort followed long enough, or too few people "
                "behind each value.")
    merged = "" if c.quarters_only else ", adjacent ones merged until each cohort's counts can be published"
    why = ("the months and cohorts that compare the most cohorts with at least half of their values "
           "published" if c.enough else "no choice publishes half of the values; this one publishes the most")
    return (f"Cohorts are enrollment quarters{merged}, shown at {_and(c.months)} months: {why} ({c.published} "
            f"of {c.cells} values of cohorts followed that long).")


def _and(items: Sequence[object]) -> str:
    words = [str(i) for i in items]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def r_definition(settings: OutcomeSettings) -> str:
    """The cohort retention definition without its estimator (the report publishes a life table)."""
    text = cohorts.RETENTION_DEFINITION.format(inactivity=settings.inactivity_days).split(" A blank")[0]
    return text.replace("Kaplan-Meier; leaving", "leaving")


def _month_names(days: dict[int, int]) -> dict[str, str]:
    return {c: c.replace(f"_{d}", f"_{m}") for m, d in days.items()
            for c in (f"retained_{d}", f"at_risk_{d}")} | {f"retained_{d}": f"month_{m}" for m, d in days.items()}



def _columns(p: privacy.Protected, keep: list[str]) -> privacy.Protected:
    cols = [c for c in keep if c in p.values.columns]
    return dataclasses.replace(p, values=p.values[cols], primary=p.primary[cols],
                               complementary=p.complementary[cols], derived=p.derived[cols],
                               counts=tuple(c for c in p.counts if c in cols),
                               perturbed=tuple(c for c in p.perturbed if c in cols))


def outcomes_by_program(report: Report, table: pd.DataFrame, retention: LifeTable | None,
                        sobriety: LifeTable | None) -> Section:
    """Check-in outcomes beside 90-day retention and median sober days, the latter two read from the
    Retention and Sobriety life tables: shown there means shown here, hidden there means hidden here."""
    out = table[["active", "checked_in", "checkins", "checkins_reporting_use", "mean_craving",
                 "mean_mood"]].copy()
    out["share_reporting_use"] = out.checkins_reporting_use / out.checkins.where(out.checkins > 0)
    counts = ["active", "checked_in", "checkins", "checkins_reporting_use"]
    derived = {"share_reporting_use": ["checkins_reporting_use", "checkins", "checked_in"],
               "mean_craving": ["checkins", "checked_in"], "mean_mood": ["checkins", "checked_in"]}
    p = privacy.protect(out, counts=counts, derived=derived, total_row=_total(table), threshold=report.threshold,
                        perturbed=["active", "checked_in"])
    values = p.values.copy()
    for lt, col, read in ((retention, "retained_90", lambda lt, g: lt.at(g, 90)[0]),
                          (sobriety, "median_sober_days", lambda lt, g: lt.median(g))):
        values[col] = [(read(lt, str(g)) if lt is not None and str(g) in lt.groups else None) for g in values.index]
        values[col] = values[col].astype(float)
    blank = pd.DataFrame(False, index=values.index, columns=["retained_90", "median_sober_days"])
    p = privacy.Protected(values=values, primary=pd.concat([p.primary, blank], axis=1),
                          complementary=pd.concat([p.complementary, blank], axis=1),
                          derived=pd.concat([p.derived, blank], axis=1), threshold=p.threshold, counts=p.counts,
                          perturbed=p.perturbed)
    meta = _meta(report, "Outcomes by program", kpis.BY_PROGRAM_DEFINITION + " Retained at 90 days and median "
                 "sober days: the values of the Retention and Sobriety sections (blank where they are not "
                 "published there).", _n_text(p, "active", _total(table) or table.index[0], "active participants"))
    return Section("Outcomes by program", "Check-in outcomes in the reporting period (share of check-ins "
                   "reporting use, mean craving 0-10 and mood 1-5) beside 90-day retention and median "
                   "sobriety of the participants enrolled in the period.",
                   [ChartExport("outcomes-by-program", meta, p, use_figure(p.values, meta.title))])


def recovery_capital_sections(report: Report, store: Store) -> list[Section]:
    """Follow-up rate and recovery capital change (analytics.publish.assessments), for participants
    enrolled up to the period's end, follow-ups due by the cutoff."""
    from analytics.analyses.assessments import NoAssessments, analyse_assessments
    from analytics.outcomes.assessments import AssessmentSettings
    from analytics.publish import assessments as published

    f = report.filters
    hi = min(f.enrolled_to, report.period.end) if f.enrolled_to else report.period.end
    chosen = dataclasses.replace(f, enrolled_to=hi)
    try:
        r = analyse_assessments(store, chosen, AssessmentSettings(cutoff=report.cutoff))
    except NoAssessments:
        return [Section("Follow-up rate", "Not reported: no participant in this selection has a baseline "
                        "recovery capital assessment.")]
    scope = f"Enrolled up to {hi}; {f.describe()}"
    return [Section(title, text, [export]) for title, text, export in
            published.sections(r, report.threshold, scope, cell_key_secret(store))]



def _total(table: pd.DataFrame) -> str | None:
    return exports.ALL_ROW if exports.ALL_ROW in table.index else None


def methods(report: Report, settings: OutcomeSettings) -> list[tuple[str, str]]:
    versions = ", ".join(f"{name} {_version(name)}" for name in SOFTWARE)
    return [
        ("Reporting period and population", f"{report.scope}. Data cutoff {report.cutoff} (the latest date in "
         "the data). People served, engagement and check-in outcomes count activity in the period; retention "
         "and sobriety follow the participants enrolled in the period up to the cutoff."),
        ("Definitions", " ".join(kpis.DEFINITIONS[k] for k in ("active", "new_enrollments", "meetings"))
         + " " + kpis.BY_PROGRAM_DEFINITION),
        ("Retention", f"Days from enrollment to dropping out: a recorded drop-out, or no engagement for "
         f"{settings.inactivity_days} days (dated at the last engagement). Completing the program, transfers "
         "and other recorded exits end follow-up without counting as dropping out (censored), as does the "
         "data cutoff."),
        ("Sobriety", "Days from the sobriety start (else the enrollment date) to the first check-in "
         "reporting use; participants without such a check-in are censored at their last check-in or exit."),
        ("Statistics", "Retention, sobriety and cohort retention are published as actuarial (Cutler-Ederer) life "
         "tables, not Kaplan-Meier steps, so that every count behind a published value is 0 or at least the "
         "threshold (see Small numbers); the tests check them against the durations and against Kaplan-Meier "
         "(within 3 percentage points on the sample). The dashboard's own screens use Kaplan-Meier with 95% "
         "confidence intervals on the log-log scale, checked against R's survival package."),
        ("Recovery capital", "BARC-10 (Vilsaint et al. 2017), total 10-60; 47 or more went with sustained "
         "remission. Follow-up schedule after SAMHSA's SUPRT: baseline within 30 days of enrollment, follow-ups "
         "180 days after it and then yearly, each within +/- 30 days; the rate counts follow-ups whose window "
         "has closed. Change: paired t-test, Wilcoxon signed-rank and McNemar tests (checked against R)."),
        ("Small numbers", privacy.method_statement(report.threshold, perturbed=True)),
        ("Consistent perturbation (cell key method)", cellkey.METHOD.format(t=report.threshold)),
        ("Protected life tables", disclosure.METHOD.format(t=report.threshold)),
        ("Software", f"Python {platform.python_version()}, {versions}."),
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@access.requires(access.PUBLISHED)  # then reads what it needs itself, as SYSTEM, and publishes it protected
def build(store: Store, period: Period, filters: Filters = Filters(), *,
          threshold: int = privacy.DEFAULT_THRESHOLD, settings: OutcomeSettings = OutcomeSettings(),
          progress: Progress | None = None) -> Report:
    """Every section's numbers, protected, with its chart and table."""
    user = access.current_user()
    filters = dataclasses.replace(filters, sites=access.scoped_sites(filters.sites, user))  # named in the report
    with access.acting_as(access.system_for(user)):
        return _build(store, period, filters, threshold, settings, progress or (lambda _msg: None))


def _build(store: Store, period: Period, filters: Filters, threshold: int, settings: OutcomeSettings,
           say: Progress) -> Report:
    privacy.check_threshold(threshold)
    report = Report(period, filters, resolve_cutoff(store, settings), threshold, dt.datetime.now())
    say("counting people served and engagement")
    table = _program_table(store=store, report=report)
    if table.empty or table["active"].sum() + table["new_enrollments"].sum() == 0:
        raise TooFew(f"nobody was active or enrolled in {period.describe()} for {filters.describe()}")
    report.sections += [people_served(report, store, table), engagement_dose(report, table)]
    say("estimating retention")
    hide = tuple(str(g) for g in report.sections[0].exports[0].table.suppressed["new_enrollments"].loc[
        lambda s: s].index)  # enrolled in the period per program: one cell, hidden everywhere or nowhere
    retention, ret = survival_section(report, store, "retention", RETENTION_TIMES, settings, hide)
    say("estimating sobriety")
    sobriety, sob = survival_section(report, store, "sobriety", SOBRIETY_TIMES, settings)
    report.sections += [retention, sobriety]
    report.life_tables.update({k: v for k, v in (("retention", ret), ("sobriety", sob)) if v is not None})
    say("comparing cohorts")
    report.sections.append(cohort_section(report, store, settings))
    report.sections.append(outcomes_by_program(report, table, ret, sob))
    say("assessing recovery capital")
    report.sections += recovery_capital_sections(report, store)
    report.methods = methods(report, settings)
    _say_why_empty(report)
    return report


def _say_why_empty(report: Report) -> None:
    """A chart whose every value is suppressed becomes a sentence saying why, not bare axes."""
    for s in report.sections:
        for e in s.exports:
            if e.figure is not None and not draws_a_value(e.figure):
                e.figure = message_figure(e.meta.title, EMPTY_CHART.format(t=report.threshold))


# --- PDF ------------------------------------------------------------------------------

def write_report(store: Store, period: Period, out: str | io.BufferedIOBase | None = None,
                 filters: Filters = Filters(), *, threshold: int = privacy.DEFAULT_THRESHOLD,
                 settings: OutcomeSettings = OutcomeSettings(), user: str | None = None,
                 progress: Progress | None = None, organisation: str = "") -> bytes:
    """Build the report, render it, record it in the audit log; write to `out` if given."""
    report = build(store, period, filters, threshold=threshold, settings=settings, progress=progress)
    report.organisation = organisation.strip()
    data = render_pdf(report, progress)
    if out is not None:
        if isinstance(out, str):
            with open(out, "wb") as fh:
                fh.write(data)
        else:
            out.write(data)
    audit.record(store, "report", str(out) if isinstance(out, str) else "outcome report", user=user,
                 period=[period.start, period.end], filters=filters, threshold=threshold)
    return data


def render_pdf(report: Report, progress: Progress | None = None) -> bytes:
    from analytics.publish import report_pdf  # reportlab is only needed here
    return report_pdf.render(report, progress or (lambda _msg: None))
