"""Simulated counting-process person-weeks with a known truth, for tests and benchmarks.

Weekly rows (7k, 7k+7]: last week's meetings and check-ins (Poisson, person-specific
rates) as time-varying covariates, a 3-level program (2 dummies) and a binary descriptor
at baseline; the hazard of leaving falls by HR 0.85 per meeting last week (TRUE_LOG_HR);
event times rounded up to whole days (many ties, some events on the first day of a week:
stop = start + 1); administrative censoring mid-week.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COVARIATES", "TRUE_LOG_HR", "collapse", "simulate_person_weeks"]

COVARIATES = ["meetings_prev", "checkins_prev", "program_b", "program_c", "female"]
TRUE_LOG_HR = {"meetings_prev": np.log(0.85), "checkins_prev": np.log(0.95),
               "program_b": 0.3, "program_c": -0.2, "female": 0.15}


def simulate_person_weeks(participants: int, seed: int, *, max_days: int = 364,
                          daily_hazard: float = 0.004, tie_days: int = 1) -> pd.DataFrame:
    """Person-week rows (start, stop, event, COVARIATES) for `participants` people.

    Follow-up ends administratively on a day drawn between 30 and max_days; within week k
    the hazard is constant, daily_hazard * exp(sum of TRUE_LOG_HR * covariates), with last
    week's counts (0 in week 0). Event times are rounded up to whole days, or to blocks of
    tie_days within the week (7: every event on the last day of its week, heavy ties)."""
    rng = np.random.default_rng(seed)
    n, weeks = participants, -(-max_days // 7)
    program = rng.integers(0, 3, n)
    base = {"program_b": (program == 1) * 1.0, "program_c": (program == 2) * 1.0,
            "female": (rng.random(n) < 0.5) * 1.0}
    meet_rate = rng.gamma(2.0, 1.0, n)
    check_rate = rng.gamma(3.0, 1.0, n)
    meetings = rng.poisson(meet_rate[:, None], (n, weeks))
    checkins = rng.poisson(check_rate[:, None], (n, weeks))
    lagged = {"meetings_prev": np.c_[np.zeros(n), meetings[:, :-1]],
              "checkins_prev": np.c_[np.zeros(n), checkins[:, :-1]]}
    eta = sum(TRUE_LOG_HR[c] * lagged[c] for c in lagged) + sum(TRUE_LOG_HR[c] * base[c][:, None] for c in base)
    end = rng.integers(30, max_days + 1, n)  # last day of follow-up
    week_start = 7 * np.arange(weeks)[None, :]
    room = np.clip(end[:, None] - week_start, 0, 7)  # days of follow-up inside each week
    wait = rng.exponential(1.0, (n, weeks)) / (daily_hazard * np.exp(eta))
    hit = wait < room
    has_event = hit.any(axis=1)
    last = np.where(has_event, hit.argmax(axis=1), -(-end // 7) - 1)  # last week at risk
    person = np.repeat(np.arange(n), last + 1)
    week = np.arange(len(person)) - np.repeat(np.cumsum(last + 1) - (last + 1), last + 1)
    event = has_event[person] & (week == last[person])
    rounded = np.minimum(np.ceil(wait[person, week] / tie_days) * tie_days, room[person, week])
    length = np.where(event, rounded, room[person, week])
    frame = pd.DataFrame({"start": 7.0 * week, "stop": 7.0 * week + np.maximum(length, 1),
                          "event": event.astype(int)})
    for c in lagged:
        frame[c] = lagged[c][person, week]
    for c in base:
        frame[c] = base[c][person]
    return frame


def collapse(frame: pd.DataFrame) -> pd.DataFrame:
    """Identical rows merged, with their number in `count` (as DuckDB's GROUP BY would)."""
    keys = ["start", "stop", "event", *COVARIATES]
    return frame.groupby(keys, as_index=False, sort=False).size().rename(columns={"size": "count"})
