"""Engagement analyses on a store of 100,000 participants, against R's coxph.

    python benchmarks/bench_engagement.py [--participants 100000] [--workdir DIR]

Prints: the person-week table (target < 10 s), the time-varying Cox model (collapsed in
DuckDB, exact Efron fit) and R's coxph(Surv(tstart, tstop, event) ~ ...) on the same
expanded table (target: ours within 2x of R), then the whole analysis.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_survival import build_store, timed  # noqa: E402

from analytics import engagement  # noqa: E402
from analytics.filters import Filters  # noqa: E402
from analytics.outcomes import OutcomeSettings  # noqa: E402
from analytics.person_weeks import person_weeks  # noqa: E402
from analytics.store import Store  # noqa: E402

R_SCRIPT = """
suppressMessages(library(survival))
d <- read.csv("{csv}")
d$event <- as.logical(d$event)
t <- function(f) median(replicate(3, system.time(f())[["elapsed"]]))
cat(sprintf("R_COX %.4f\\n", t(function() coxph(Surv(tstart, tstop, event) ~ meetings_prev + checkins_prev +
    mentoring_prev + program, data = d, ties = "efron"))))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-survival")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build_store(args.workdir, args.participants)
    settings, filters = OutcomeSettings(), Filters()
    with Store.open(db, read_only=True) as store:
        t_pw, pw = timed(repeat=1, fn=lambda: person_weeks(store, "retention"))
        t_tv, (terms, _) = timed(repeat=1, fn=lambda: engagement.time_varying(store, "retention", ["program"], settings, filters))
        t_all, _ = timed(repeat=1, fn=lambda: engagement.analyse_engagement(store, "retention"))
    csv = args.workdir / "person_weeks.csv"
    pw.frame[["tstart", "tstop", "event", "meetings_prev", "checkins_prev", "mentoring_prev", "program"]].to_csv(
        csv, index=False)
    out = subprocess.run(["Rscript", "-e", R_SCRIPT.format(csv=csv)], capture_output=True, text=True, check=True)
    r_cox = float(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("R_COX")))
    print(f"store: {db}: {pw.participants:,} participants, {len(pw.frame):,} person-weeks, {pw.events:,} events")
    print(f"person-week table (DuckDB -> pandas):        {t_pw:.2f} s (target < 10 s)")
    print(f"time-varying Cox (collapse in DuckDB + fit): {t_tv:.2f} s")
    print(f"R coxph on the same expanded table:          {r_cox:.2f} s -> ours / R = {t_tv / r_cox:.2f} (target < 2)")
    print("hazard ratios: " + ", ".join(f"{t.term} {t.estimate:.3f} ({t.ci[0]:.3f}-{t.ci[1]:.3f})" for t in terms))
    print(f"whole engagement analysis (time-varying, 3 landmarks, GEE, naive): {t_all:.1f} s")


if __name__ == "__main__":
    main()
