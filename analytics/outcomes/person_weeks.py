"""Person-week table in counting-process form, from DuckDB.

One row per participant and week since the start of follow-up while at risk:
week k covers days 7k..7k+6 after the start (enrollment for retention, the sobriety
start for sobriety). The row's interval is (start, stop] on a clock that counts the
start day as day 1, so week k is (7k, 7k+7] and a participant whose follow-up ends on
day s stops at s + 1. This gives every row a positive length, including an event on
day 0 (interval (0, 1]); Cox estimates depend only on the order of times, so the
shift changes nothing else.

Engagement columns per row: this week's meetings, check-ins and mentoring sessions;
of the meetings, those online (`online`: meeting_type online_community or modality
online; the rest are in-person groups);
the previous week's (the `_prev` columns: the default exposure, so the week someone
leaves cannot explain their leaving); and totals to date before this week. Only
activity inside each participant's follow-up counts. Check-in summaries for the week
(any use reported, mean craving, mean mood) feed the repeated-measures models.

How it is built (the SQL: analytics.store.queries.outcomes): DuckDB computes the
durations once (into a temporary table) and
returns one row per participant followed (sorted by id), one small numeric row per
activity inside a participant's follow-up (its person-week row and kind packed in one
integer: participant i's week k is row first_i + k; its day of follow-up) and one per
check-in (its row, use, craving, mood). numpy counts those into the rows by direct indexing
(np.bincount), several times faster than grouping millions of rows by (participant,
week) in SQL, and no descriptor is sent once per week. The models work on these
arrays; `PersonWeeks.frame` builds the pandas table (one row per person-week) only when
asked. `person_weeks_sql` is the same table as one SQL query: the reference definition,
which the tests check the arrays against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import DESCRIPTORS, MISSING_LEVEL, OutcomeSettings, check_outcome, resolve_cutoff
from analytics.store.connection import Store
from analytics.store.queries import outcomes as queries
from analytics.store.queries.outcomes import ONLINE_MEETING_SQL  # noqa: F401  (the rule, re-exported)

ENGAGEMENT = ("meetings", "checkins", "mentoring")
LAGGED = tuple(f"{e}_prev" for e in ENGAGEMENT)
DEFAULT_SETTINGS, NO_FILTERS = OutcomeSettings(), Filters()  # the defaults (both are immutable)


@dataclass
class PersonWeeks:
    """The person-week table as arrays: `people` has one row per participant followed
    (sorted by id; participant_id, the descriptors as categoricals, days = stop - start,
    event); each array has one entry per person-week row, sorted by participant and week
    (`person` indexes `people`). Engagement columns are (rows, 3) arrays in the order
    meetings, check-ins, mentoring; `online_previous` / `online_totals` count the online
    meetings among them (ONLINE_MEETING_SQL; the rest are in-person groups).
    `first_days[d]` holds each participant's engagement
    in their first d days of follow-up, (people, 3), for the d asked for."""

    outcome: str
    people: pd.DataFrame
    left_out: dict[str, int]
    person: np.ndarray
    week: np.ndarray
    tstop: np.ndarray
    event: np.ndarray
    current: np.ndarray
    previous: np.ndarray
    to_date: np.ndarray
    used_any: np.ndarray  # 1.0 / 0.0, NaN in a week without a check-in
    craving: np.ndarray  # mean craving of the week's check-ins, NaN if none
    totals: np.ndarray  # (people, 3): each participant's engagement over all their follow-up
    first_days: dict[int, np.ndarray] = field(default_factory=dict)
    online_current: np.ndarray | None = None  # (rows,): online meetings this week
    online_previous: np.ndarray | None = None  # (rows,): online meetings the previous week
    online_totals: np.ndarray | None = None  # (people,): online meetings over all the follow-up
    _checkin_mood: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @cached_property
    def mood(self) -> np.ndarray:
        """Mean mood of the week's check-ins, NaN if none."""
        mood = np.full(self.rows, np.nan)
        if self._checkin_mood is not None:
            at, values = self._checkin_mood
            known = values >= 0
            mood = _mean(np.bincount(at[known], weights=values[known], minlength=self.rows),
                         np.bincount(at[known], minlength=self.rows))
        return mood

    @property
    def tstart(self) -> np.ndarray:
        return 7 * self.week

    @property
    def rows(self) -> int:
        return len(self.person)

    @cached_property
    def weeks_per_person(self) -> np.ndarray:
        return np.bincount(self.person, minlength=len(self.people))

    @property
    def participants(self) -> int:
        return int((self.weeks_per_person > 0).sum())

    @property
    def events(self) -> int:
        return int(self.event.sum())

    @cached_property
    def frame(self) -> pd.DataFrame:
        """One row per person-week (participant_id, descriptors, week, tstart, tstop, event,
        this week's / previous week's / to-date engagement, used_any, craving, mood), as
        person_weeks_sql returns it."""
        people, person = self.people, self.person
        out = {"participant_id": people.participant_id.astype(str).to_numpy(object)[person]}
        for col in DESCRIPTORS:
            values = people[col].cat
            out[col] = pd.Categorical.from_codes(values.codes[person], values.categories)
        out |= {"week": self.week.astype(np.int64), "tstart": self.tstart.astype(np.int64),
                "tstop": self.tstop.astype(np.int64), "event": self.event}
        for j, name in enumerate(ENGAGEMENT):
            out[name] = self.current[:, j]
        for j, name in enumerate(LAGGED):
            out[name] = self.previous[:, j]
        for j, name in enumerate(ENGAGEMENT):
            out[f"{name}_to_date"] = self.to_date[:, j]
        used = np.full(len(person), None, dtype=object)
        known = ~np.isnan(self.used_any)
        used[known] = self.used_any[known] > 0
        out |= {"used_any": used, "craving": self.craving, "mood": self.mood,
                "online": self.online_current, "online_prev": self.online_previous}
        return pd.DataFrame(out)


def person_weeks_sql(store: Store, outcome: str, settings: OutcomeSettings,
                     filters: Filters) -> tuple[str, dict]:
    """The person-week table as one SQL query (the reference definition; person_weeks
    builds the same rows faster)."""
    check_outcome(outcome)
    return queries.person_weeks_sql(outcome, resolve_cutoff(store, settings), settings.inactivity_days,
                                    filters, DESCRIPTORS, MISSING_LEVEL)


def _mean(total: np.ndarray, n: np.ndarray) -> np.ndarray:
    out = np.full(len(n), np.nan)
    np.divide(total, n, out=out, where=n > 0)
    return out


def person_weeks(store: Store, outcome: str, settings: OutcomeSettings = DEFAULT_SETTINGS,
                 filters: Filters = NO_FILTERS, *, first_days: Sequence[int] = ()) -> PersonWeeks:
    """The person-week table for `outcome`, one row per participant-week at risk; with
    `first_days`, also each participant's engagement in their first d days."""
    check_outcome(outcome)
    everyone, act, checkins = queries.person_week_parts(store, outcome, resolve_cutoff(store, settings),
                                                        settings.inactivity_days, filters, DESCRIPTORS,
                                                        MISSING_LEVEL)
    left_out = everyone.left_out[everyone.left_out.notna()].astype(str).value_counts()
    people = everyone[everyone.left_out.isna()].drop(columns="left_out").reset_index(drop=True)
    people["participant_id"] = people.participant_id.astype(str)
    people["event"] = people.event.astype(bool)
    people["days"] = people.days.astype(np.int64)
    return _build(outcome, people, {str(k): int(v) for k, v in left_out.items()}, act, checkins, first_days)


def _build(outcome: str, people: pd.DataFrame, left_out: dict[str, int], act: pd.DataFrame,
           checkins: pd.DataFrame, first_days: Sequence[int]) -> PersonWeeks:
    # Millions of rows: 32-bit integers and few temporaries (allocating is much of the cost).
    n = len(people)
    days = people.days.to_numpy(np.int64)
    nweeks = np.maximum(days // 7 + 1, 0)
    total = int(nweeks.sum())
    if 4 * total >= 2**31:  # the activity query's slot is a 32-bit integer (the query fails first)
        raise ValueError(f"{total:,} person-weeks is more than this table can index")
    first = (np.cumsum(nweeks) - nweeks).astype(np.int32)  # each participant's first row
    person = np.repeat(np.arange(n, dtype=np.int32), nweeks)
    week = np.arange(total, dtype=np.int32)
    week -= first[person]
    last_week = (days // 7).astype(np.int32)[person]
    tstop = np.minimum(7 * week + 7, 7 * last_week + (days % 7).astype(np.int32)[person] + 1)
    event = people.event.to_numpy(bool)[person] & (week == last_week)

    slot = act["slot"].to_numpy()
    by_kind = np.bincount(slot, minlength=4 * total).astype(np.int32).reshape(total, 4)
    online = by_kind[:, 3].copy()
    current = by_kind[:, :3]  # meetings (in person and online), check-ins, mentoring
    current[:, 0] += online
    current = np.ascontiguousarray(current)
    del by_kind
    previous = np.zeros_like(current)
    previous[1:] = current[:-1]
    previous[week == 0] = 0
    online_prev = np.zeros_like(online)
    online_prev[1:] = online[:-1]
    online_prev[week == 0] = 0
    to_date = np.cumsum(current, axis=0, dtype=np.int32)
    to_date -= current
    to_date -= to_date[first[person]]

    at = checkins["row"].to_numpy()

    def weekly(column: str) -> tuple[np.ndarray, np.ndarray]:  # per row: sum and count of the known values
        values = checkins[column].to_numpy()
        known = values >= 0
        rows, values = (at, values) if known.all() else (at[known], values[known])
        return np.bincount(rows, weights=values, minlength=total), np.bincount(rows, minlength=total)

    said_yes, reports = weekly("used")
    used_any = np.where(reports > 0, (said_yes > 0).astype(float), np.nan)
    craving = _mean(*weekly("craving"))
    mood = checkins["mood"].to_numpy()  # averaged only if the frame is asked for
    last = first + nweeks - 1
    totals = np.zeros((n, 3), np.int64)  # each participant's engagement over all their follow-up
    totals[nweeks > 0] = to_date[last[nweeks > 0]] + current[last[nweeks > 0]]
    counts = {}
    if any(d > 0 for d in first_days):  # the activity in the first max(d) days, once
        day = act["day"].to_numpy()
        early = np.flatnonzero(day < max(first_days))
        early_day, early_slot = day[early], slot[early]
        early_who = person[early_slot // 4].astype(np.int64) * 3 + (early_slot % 4) % 3  # online: a meeting
    for d in first_days:  # the weeks before d's week (to date), plus the days of its week before d
        if d <= 0:
            counts[int(d)] = np.zeros((n, 3), np.int64)
            continue
        q, r = divmod(int(d), 7)
        before = totals.copy()  # followed for fewer than q weeks: everything counts
        reached = nweeks > q
        before[reached] = to_date[first[reached] + q]
        if r:
            part = (early_day >= 7 * q) & (early_day < d)
            before += np.bincount(early_who[part], minlength=3 * n).reshape(n, 3)
        counts[int(d)] = before
    online_totals = np.bincount(person, weights=online, minlength=n).astype(np.int64)
    return PersonWeeks(outcome, people, left_out, person, week, tstop, event, current, previous, to_date,
                       used_any, craving, totals, counts, online, online_prev, online_totals,
                       _checkin_mood=(at, mood))
