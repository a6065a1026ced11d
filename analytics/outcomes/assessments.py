"""Follow-up assessment definitions (issue 14), each a named, documented setting.

After SAMHSA's SUPRT schedule:

Baseline
    The first assessment of the instrument from ``baseline_before_days`` (30) before to
    ``baseline_after_days`` (30) after enrollment. Participants without one have no
    follow-up schedule and are counted as "no baseline".
Follow-ups
    Due ``followup_days`` after the baseline: 180 days (6 months), then yearly (365, 730,
    1095 ... days). A follow-up is *done* when an assessment falls within
    +/- ``window_days`` (30) of its due day; the one nearest the due day is used.
Due for the rate
    Once its window has closed by the cutoff (due day + 30 <= cutoff). Participants
    recorded as deceased before the window opens are not due. Rate = done / due, against
    ``target_rate`` (80%).
Due soon
    Not yet done, window still open at the cutoff, and opening within ``due_soon_days``
    (14) of it: the staff list.
Change
    Baseline to the 6-month follow-up, among those with both. ``threshold_total`` (47)
    is the BARC-10 total that went with sustained remission (Vilsaint et al. 2017).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.store.schema import INSTRUMENTS

YEARS_FOLLOWED = 10  # yearly follow-ups listed up to this many years after baseline
MONTH_DAYS = 30.4375  # months since enrollment in the trajectory model: days / 30.4375


@dataclass(frozen=True)
class AssessmentSettings:
    """The named settings of the follow-up definitions (defaults as in SUPRT and BARC-10)."""

    instrument: str = "barc10"
    cutoff: dt.date | None = None  # None: the latest date in the store
    baseline_before_days: int = 30
    baseline_after_days: int = 30
    first_followup_days: int = 180
    then_every_days: int = 365
    window_days: int = 30
    due_soon_days: int = 14
    target_rate: float = 0.80
    threshold_total: int = 47

    def __post_init__(self) -> None:
        if self.instrument not in INSTRUMENTS:
            raise ValueError(f"unknown instrument {self.instrument!r}; known: {', '.join(INSTRUMENTS)}")
        if min(self.baseline_before_days, self.baseline_after_days, self.window_days, self.due_soon_days) < 0:
            raise ValueError("assessment windows must not be negative")

    @property
    def followup_days(self) -> list[int]:
        """Days after baseline each follow-up is due: 180, then 365, 730, ..."""
        return [self.first_followup_days] + [self.then_every_days * k for k in range(1, YEARS_FOLLOWED + 1)]
