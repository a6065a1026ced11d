"""Engagement analyses on a store of 100,000 participants: each stage, the whole, and R's coxph.

    python benchmarks/bench_engagement.py [--participants 100000] [--workdir DIR] [--repeat 1]
                                          [--outcome retention] [--no-r]

Prints, for analyse_engagement's default arguments (the dashboard page's call):
- the person-week table as analyse_engagement builds it (DuckDB: the durations once into a
  temporary table, then the participants, the activity and the check-ins as small numeric
  rows; numpy counts them into weeks, and the first-30/60/90-days counts the landmarks
  use), and the pandas table PersonWeeks.frame, built only on request;
- each model on that table, one at a time: time-varying Cox (patterns + exact Efron fit),
  the three landmark analyses, the two GEE models, the naive (biased) Cox;
- the whole analysis (the table once, the models on two threads); target < 3 s cold;
- R's coxph(Surv(tstart, tstop, event) ~ ...) on the expanded person-week table, against
  the time-varying Cox (target: ours within 2x of R).

The first call of each --repeat round runs on a fresh DuckDB connection (the store file
in the OS cache), like a dashboard page after a restart. Medians over --repeat rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


from bench_survival import build_store

from analytics.analyses import engagement
from analytics.outcomes.person_weeks import person_weeks
from analytics.store.connection import Store

R_SCRIPT = """
suppressMessages(library(survival))
d <- read.csv("{csv}")
d$event <- as.logical(d$event)
t <- function(f) median(replicate(3, system.time(f())[["elapsed"]]))
cat(sprintf("R_COX %.4f\\n", t(function() coxph(Surv(tstart, tstop, event) ~ meetings_prev + checkins_prev +
    mentoring_prev + program, data = d, ties = "efron"))))
"""
ADJUST = ["program"]  # analyse_engagement's default (every program has participants in the store)


def _timer(times: dict[str, float]):
    def timed(label: str, fn):
        start = time.perf_counter()
        result = fn()
        times[label] = time.perf_counter() - start
        return result
    return timed


def _stages(db: Path, outcome: str, times: dict[str, float]) -> dict[str, int]:
    """Each stage, one at a time, on a fresh connection."""
    timed = _timer(times)
    with Store.open(db, read_only=True) as store:
        pw = timed("person-week table", lambda: person_weeks(store, outcome, first_days=engagement.LANDMARKS))
    timed("  as a pandas table (.frame, on request only)", lambda: len(pw.frame))
    pw.__dict__.pop("frame")  # the models do not use it
    timed("time-varying Cox", lambda: engagement.fit_time_varying(pw, ADJUST))
    for day in engagement.LANDMARKS:
        timed(f"landmark day {day}", lambda day=day: engagement.fit_landmark(pw, day, ADJUST))
    timed("GEE reported use", lambda: engagement.gee_use(pw, ADJUST))
    timed("GEE craving", lambda: engagement.gee_craving(pw, ADJUST))
    timed("naive (biased) Cox", lambda: engagement.naive(pw, ADJUST))
    return {"participants": pw.participants, "rows": pw.rows, "events": pw.events}


def one_round(db: Path, outcome: str) -> tuple[dict[str, float], dict]:
    """The stages, then the whole analysis on another fresh connection (the stages' table
    freed by then, as in a fresh process), and a second call on that connection."""
    times: dict[str, float] = {}
    size = _stages(db, outcome, times)
    timed = _timer(times)
    with Store.open(db, read_only=True) as store:
        analysis = timed("whole analysis", lambda: engagement.analyse_engagement(store, outcome))
        timed("whole analysis, second call", lambda: engagement.analyse_engagement(store, outcome))
    return times, size | {"analysis": analysis}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-survival")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--outcome", choices=["retention", "sobriety"], default="retention")
    parser.add_argument("--no-r", action="store_true", help="skip R's coxph")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build_store(args.workdir, args.participants)
    warnings.simplefilter("ignore")  # statsmodels' convergence notes on small landmark models
    rounds = [one_round(db, args.outcome) for _ in range(args.repeat)]
    times = {label: statistics.median(r[0][label] for r in rounds) for label in rounds[0][0]}
    size, analysis = rounds[-1][1], rounds[-1][1]["analysis"]

    print(f"store: {db}: {size['participants']:,} participants, {size['rows']:,} person-weeks, "
          f"{size['events']:,} events ({args.outcome}); median of {args.repeat}")
    stages = [label for label in times if not label.startswith(("whole", "  "))]
    for label, seconds in times.items():
        if label == "whole analysis":
            print(f"{'sum of the stages, one at a time':<48}{sum(times[s] for s in stages):6.2f} s")
            print(f"{'whole analysis (models on two threads)':<48}{seconds:6.2f} s (target < 3 s)")
        elif label.startswith("whole"):
            print(f"{label + ' (same connection)':<48}{seconds:6.2f} s")
        else:
            print(f"{label:<48}{seconds:6.2f} s")
    terms = analysis.time_varying
    print("hazard ratios: " + ", ".join(f"{t.term} {t.estimate:.3f} ({t.ci[0]:.3f}-{t.ci[1]:.3f})" for t in terms))
    if args.no_r:
        return
    csv = args.workdir / "person_weeks.csv"
    with Store.open(db, read_only=True) as store:
        frame = person_weeks(store, args.outcome).frame
    frame[["tstart", "tstop", "event", "meetings_prev", "checkins_prev", "mentoring_prev", "program"]].to_csv(
        csv, index=False)
    out = subprocess.run(["Rscript", "-e", R_SCRIPT.format(csv=csv)], capture_output=True, text=True, check=True)
    r_cox = float(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("R_COX")))
    t_tv = times["time-varying Cox"]
    print(f"R coxph on the same expanded table: {r_cox:.2f} s -> our time-varying Cox / R = {t_tv / r_cox:.2f} "
          f"(target < 2; ours starts from the person-week arrays, R from its data frame)")


if __name__ == "__main__":
    main()
