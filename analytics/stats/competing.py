"""Cumulative incidence of competing exits (Aalen-Johansen): dropping out vs completing.

Completing the program is not failing, and someone who completed can no longer drop
out: 1 - KM would overstate dropping out. The cumulative incidence function of each
exit type accounts for the others. statsmodels' CumIncidenceRight computes it (and,
unlike lifelines, without jittering tied times); tests compare it with R's
survfit(Surv(time, factor(status)) ~ 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.stats.survival import Z95

EXIT_TYPES = ("dropped_out", "completed", "other_exit")


def cumulative_incidence(days: np.ndarray, event_type: np.ndarray) -> pd.DataFrame:
    """Long table: exit_type, time, incidence, se, lower, upper (normal CI clipped to [0, 1]).

    event_type holds one of EXIT_TYPES, or anything else (e.g. 'censored') for censored.
    Exit types that never occur are absent from the table.
    """
    days = np.asarray(days, float)
    kinds = np.asarray(event_type, dtype=str)
    present = [k for k in EXIT_TYPES if (kinds == k).any()]
    columns = ["exit_type", "time", "incidence", "se", "lower", "upper"]
    if not present or days.size == 0:
        return pd.DataFrame(columns=columns)
    status = np.zeros(days.size, int)
    for code, kind in enumerate(present, start=1):
        status[kinds == kind] = code
    from statsmodels.duration.survfunc import CumIncidenceRight  # here: it imports scipy.stats (~0.5 s)

    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 at a last time where all exit
        fit = CumIncidenceRight(days, status)
    frames = []
    for code, kind in enumerate(present):
        inc = np.asarray(fit.cinc[code], float)
        se = np.asarray(fit.cinc_se[code], float)
        frames.append(pd.DataFrame({"exit_type": kind, "time": fit.times, "incidence": inc, "se": se,
                                    "lower": np.clip(inc - Z95 * se, 0, 1),
                                    "upper": np.clip(inc + Z95 * se, 0, 1)}))
    return pd.DataFrame(pd.concat(frames, ignore_index=True), columns=columns)


def incidence_at(table: pd.DataFrame, times: tuple[int, ...], follow_up: float | None = None) -> pd.DataFrame:
    """Cumulative incidence of each exit type at fixed times (a step function, 0 before the
    first exit). None past `follow_up` (the group's longest follow-up): nothing is known there."""
    rows = []
    for kind, sub in table.groupby("exit_type", sort=False):
        for t in times:
            before = sub[sub.time <= t]
            value = float(before.incidence.iloc[-1]) if len(before) else 0.0
            known = follow_up is None or t <= follow_up
            rows.append({"exit_type": kind, "time": t, "incidence": value if known else None})
    return pd.DataFrame(rows, columns=["exit_type", "time", "incidence"])
