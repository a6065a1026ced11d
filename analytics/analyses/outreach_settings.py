"""The outreach ranking's settings (issue 13), declared once with their defaults.

To be folded into analytics/settings.py with the other settings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutreachSettings:
    """horizon_days: the risk is of leaving in the next this many days; also the spacing of the
    landmarks the model learns from and of the backtest's cutoffs.
    backtest_cutoffs: how many past cutoffs the track record covers (13 x 28 days: a year).
    min_events: fewer leavings than this in the history and no model is fitted: the list is
    ranked by days since the last contact alone, and says so.
    learn_events: a model learns from the most recent windows that together hold at least
    this many leavings (all the history when it holds fewer): plenty for 9 terms, recent,
    and at 100,000 participants a few months instead of years (the speed target)."""

    horizon_days: int = 28
    backtest_cutoffs: int = 13
    min_events: int = 50
    learn_events: int = 5000

    def __post_init__(self) -> None:
        if self.horizon_days < 7:
            raise ValueError("horizon_days must be at least 7")
        if self.backtest_cutoffs < 1:
            raise ValueError("backtest_cutoffs must be at least 1")
        if self.min_events < 10:
            raise ValueError("min_events must be at least 10")
        if self.learn_events < self.min_events:
            raise ValueError("learn_events must be at least min_events")
