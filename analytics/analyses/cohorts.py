"""Cohorts page: retention by enrollment cohort, and check-in trends by cohort.

Cohort retention table
    Rows: enrollment cohorts (calendar month '2026-03' or quarter '2026-Q1' of
    ``enrolled_on``). Columns: months since enrollment m = 0, 1, ..., where month m means
    day round(m x 30.44) after enrolling (day 0 for m = 0). Value: the share of the cohort
    still in the program at that day, by the retention definition of docs/outcome-definitions.md
    (``analytics.outcomes.definitions``): a recorded drop-out, or no engagement for
    ``inactivity_days`` (dated at the last engagement), is leaving; completing,
    transferring and other exits are censored (they leave the denominator from their exit
    on, they are never counted as leaving). The share is the Kaplan-Meier estimate
    (``analytics.stats.survival``) of the cohort's retention curve at that day.

    A cell is missing (NaN), never 0, unless every member of the cohort was enrolled at
    least that day + ``inactivity_days`` before the cutoff: a participant who stopped
    engaging counts as having left only once ``inactivity_days`` have passed, so until then
    their status at that month is not known. With that rule every member's status at the
    cell's day is known except for those censored by another exit, which KM handles: no
    one is counted as lost for not having been followed long enough, and no one who has
    in fact gone quiet is counted as retained.

Check-in trends by cohort
    Reported use, craving and mood per cohort and month since enrollment (month m = days
    [m x 30.44, (m+1) x 30.44) after enrolling), averaged first within each participant
    and then over participants, so frequent check-ins do not weigh more. These are among
    the participants still checking in: those who left are no longer in later months, so
    later months describe the people who stayed.
"""

from __future__ import annotations

import datetime as dt
import math
import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.access.roles import ANALYTICS, requires
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import km_from_counts, retention_counts
from analytics.outcomes.definitions import OutcomeSettings, resolve_cutoff
from analytics.store.connection import Store
from analytics.store.queries import cohorts as queries
from analytics.store.queries.disclosure import MODULUS

__all__ = ["COHORT_UNITS", "MONTH_DAYS", "CohortRetention", "cohort_retention", "cohort_trends", "month_day"]

COHORT_UNITS = ("month", "quarter")
MONTH_DAYS = 365.25 / 12
# the durations column holding each participant's cohort, per cohort unit
_DURATION_COLUMN = {"month": "cohort_month", "quarter": "cohort_quarter"}

RETENTION_DEFINITION = (
    "Share of each enrollment cohort still in the program m months (m x 30.44 days) after enrolling: "
    "Kaplan-Meier; leaving = recorded drop-out or no engagement for {inactivity} days (dated at the last "
    "engagement); completions and other exits are censored, not counted as leaving. A blank cell: not every "
    "member has been followed m months + {inactivity} days yet (not known, not lost).")
TRENDS_DEFINITION = (
    "Per cohort and month since enrollment (month m = days m x 30.44 to (m+1) x 30.44): used_share = share "
    "of participants checking in that month who reported any substance use; craving (0-10) and mood (1-5) = "
    "mean over participants of each one's mean that month. Only participants still checking in are "
    "counted, so later months describe those who stayed.")


def month_day(m: int) -> int:
    """The day after enrollment that "month m" stands for: round(m x 30.44)."""
    return int(round(m * MONTH_DAYS))


def _check_unit(by: str) -> None:
    if by not in COHORT_UNITS:
        raise ValueError(f"cohorts are by {' or '.join(COHORT_UNITS)}, not {by!r}")


@dataclass
class CohortRetention:
    """The cohort retention table (see the module docstring for the definition).

    shares: index = cohort label, columns = months 0..N (ints); float share or NaN (not
        followed long enough to be known).
    at_risk: same shape: participants still followed (in the risk set) at that day; NA
        where the share is missing.
    n: participants per cohort (those enrolled on or before the cutoff).
    complete_to: per cohort, the last month whose cell is known (-1 if none yet).
    """

    by: str
    cutoff: dt.date
    settings: OutcomeSettings
    filters: Filters
    shares: pd.DataFrame
    at_risk: pd.DataFrame
    n: pd.Series
    complete_to: pd.Series
    n_key: pd.Series | None = None  # with keyed=True: the cell keys of n and at_risk (for the download)
    at_risk_key: pd.DataFrame | None = None
    intervals: pd.DataFrame | None = None
    # with keyed=True: per cohort and month m >= 1 (known), the events and censorings in
    # [day(m - 1), day(m)) and their cell keys (columns cohort, month, events, events_key, censored,
    # censored_key): the download's shares are computed from them, perturbed

    @property
    def months(self) -> list[int]:
        return list(self.shares.columns)

    @property
    def empty(self) -> bool:
        return self.n.empty

    def thin(self, threshold: int) -> pd.DataFrame:
        """Known cells resting on fewer than ``threshold`` people still followed: too few to read
        as a finding (one person leaving moves such a cell by 10 points or more)."""
        at_risk = self.at_risk.astype("float")
        return at_risk.notna() & (at_risk < threshold) & self.shares.notna()

    def table(self) -> pd.DataFrame:
        """For display and CSV: cohort, n, then one column per month ('month_0', ...)."""
        out = self.shares.rename(columns=lambda m: f"month_{m}")
        out.insert(0, "n", self.n)
        return out.reset_index()

    def definition(self) -> str:
        return RETENTION_DEFINITION.format(inactivity=self.settings.inactivity_days)

    def describe(self) -> str:
        return (f"{self.definition()} Cohorts by {self.by}; n={int(self.n.sum()):,} in {len(self.n)} "
                f"cohorts; data to {self.cutoff}; {self.filters.describe()}")


@requires(ANALYTICS)
def cohort_retention(store: Store, filters: Filters = Filters(), by: str = "month",
                     max_months: int | None = None,
                     settings: OutcomeSettings = OutcomeSettings(), keyed: bool = False) -> CohortRetention:
    """Cohort-by-months-since-enrollment retention table (see the module docstring).

    by: 'month' or 'quarter' of enrollment. max_months: the last column (default: as far
    as any cohort is known). The durations are counted per cohort and day in DuckDB;
    Kaplan-Meier runs on those counts. ``keyed``: also the cell keys of n and at_risk (n_key,
    at_risk_key: sums of the SQL's keys of the same rows), for the perturbed download.
    """
    _check_unit(by)
    if max_months is not None and max_months < 0:
        raise ValueError("max_months must be 0 or more")
    cutoff = resolve_cutoff(store, settings)
    inactivity = settings.inactivity_days
    counts = retention_counts(store, filters, settings, _DURATION_COLUMN[by], keyed=keyed)
    cohorts = sorted(counts.grp.unique()) if not counts.empty else []
    n = pd.Series({c: int(counts.n[counts.grp == c].sum()) for c in cohorts}, dtype="int64", name="n")
    # the latest-enrolled member bounds what is known for the whole cohort
    followed = {c: int(counts.potential[counts.grp == c].min()) for c in cohorts}
    complete_to = pd.Series({c: _last_known_month(followed[c], inactivity) for c in cohorts},
                            dtype="int64", name="complete_to")
    last = max_months if max_months is not None else max([0, *complete_to.tolist()])
    months = list(range(0, last + 1))
    shares = pd.DataFrame(np.nan, index=pd.Index(cohorts, name="cohort"), columns=months, dtype=float)
    at_risk = pd.DataFrame(pd.NA, index=shares.index, columns=months, dtype="Int64")
    for c in cohorts:
        sub = counts[counts.grp == c]
        km = km_from_counts(sub)
        for m in months:
            if m > complete_to[c]:
                break
            t = month_day(m)
            value = km.at(t)
            shares.loc[c, m] = np.nan if value is None else value
            at_risk.loc[c, m] = int(sub.n[sub.ndays >= t].sum())
    result = CohortRetention(by, cutoff, settings, filters, shares, at_risk, n, complete_to)
    return _with_keys(result, counts) if keyed else result


def _with_keys(r: CohortRetention, counts: pd.DataFrame) -> CohortRetention:
    """``r`` with the cell keys of its n and at-risk counts: the sums (mod 2^64) of the keys of the
    same rows of ``counts`` that the counts sum, as exact Python integers."""
    def key(rows: pd.DataFrame) -> int:
        return sum(int(k) for k in rows.n_key) % MODULUS

    n_key = pd.Series({c: key(counts[counts.grp == c]) for c in r.n.index}, dtype=object, name="n")
    at_risk_key = pd.DataFrame(None, index=r.at_risk.index, columns=r.at_risk.columns, dtype=object)
    intervals = []
    for c in r.at_risk.index:
        sub = counts[counts.grp == c]
        for m in r.months:
            if pd.notna(r.at_risk.loc[c, m]):
                at_risk_key.loc[c, m] = key(sub[sub.ndays >= month_day(m)])
                if m > 0:
                    inside = sub[(sub.ndays >= month_day(m - 1)) & (sub.ndays < month_day(m))]
                    left, censored = inside[inside.event], inside[~inside.event]
                    intervals.append({"cohort": c, "month": m, "events": int(left.n.sum()), "events_key": key(left),
                                      "censored": int(censored.n.sum()), "censored_key": key(censored)})
    columns = ["cohort", "month", "events", "events_key", "censored", "censored_key"]
    return dataclasses.replace(r, n_key=n_key, at_risk_key=at_risk_key,
                               intervals=pd.DataFrame(intervals, columns=columns))


def _last_known_month(followed_days: int, inactivity_days: int) -> int:
    """The largest m with month_day(m) + inactivity_days <= followed_days (-1 if none)."""
    m = math.floor(max(followed_days - inactivity_days, -1) / MONTH_DAYS) + 1
    while m >= 0 and month_day(m) + inactivity_days > followed_days:
        m -= 1
    return m


@requires(ANALYTICS)
def cohort_trends(store: Store, filters: Filters = Filters(), by: str = "month",
                  settings: OutcomeSettings = OutcomeSettings(), keyed: bool = False) -> pd.DataFrame:
    """Reported use, craving and mood by enrollment cohort and month since enrollment.

    One row per (cohort, month) with at least one check-in (on or before the cutoff):
    cohort, month (0 = first 30.44 days), cohort_n (cohort size), participants (checking
    in that month), checkins, reported_use / no_use (of those participants, reporting any
    use that month or none), used_share (reported_use / participants), craving and mood
    (mean over participants of their monthly mean; NaN if none recorded), craving_n /
    mood_n (participants with a value), complete (every member of the cohort had been
    enrolled for the whole month by the cutoff; the last months of recent cohorts are
    partial). See TRENDS_DEFINITION. ``keyed``: also the cell key ``<count>_key`` of each
    count of people, so the download can perturb them (as cohort_retention's keyed).
    """
    _check_unit(by)
    cutoff = resolve_cutoff(store, settings)
    frame = queries.checkin_trends(store, filters, by, cutoff, MONTH_DAYS, keyed=keyed)
    frame["complete"] = frame["complete"].astype(bool)
    return frame
