"""Time-varying Cox speed on simulated person-weeks, against R's coxph on the same table.

    python benchmarks/bench_tvcox.py [--participants 100000] [--max-days 728] [--workdir DIR]

Builds counting-process person-weeks (analytics.stats.simulate, as tests/test_tvcox_vs_r.py: last
week's meetings and check-ins, program dummies, a descriptor; whole-day event times),
times analytics.stats.tvcox.fit_counting_cox on the expanded table and on the collapsed one
(identical rows merged with counts, as DuckDB's GROUP BY would give), then writes the
expanded table to CSV and times R's coxph(Surv(start, stop, event) ~ ..., ties = "efron")
on it (median of 3 runs, R re-running the fit each time; reading the CSV is not timed).
Target: ours within 2x of R's time on the same table. Also prints the largest relative
difference between our coefficients/SEs and R's.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from analytics.stats.simulate import COVARIATES, collapse, simulate_person_weeks
from analytics.stats.tvcox import fit_counting_cox
from bench_survival import timed  # the script's own folder is on the path

R_SCRIPT = """
suppressMessages(library(survival))
d <- read.csv("{csv}", colClasses = "numeric")
d$event <- as.logical(d$event)
t <- function(f) median(replicate(3, system.time(f())[["elapsed"]]))  # f(): re-run each time
fit <- NULL
cat(sprintf("R_COX %.4f\\n", t(function() fit <<- coxph(Surv(start, stop, event) ~ {terms}, data = d,
    ties = "efron"))))
cat(sprintf("R_ITER %d\\n", fit$iter))
cat(paste("R_COEF", paste(sprintf("%.17g", coef(fit)), collapse = ","), "\\n"))
cat(paste("R_SE", paste(sprintf("%.17g", sqrt(diag(vcov(fit)))), collapse = ","), "\\n"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--max-days", type=int, default=728, help="longest administrative follow-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-tvcox")
    parser.add_argument("--no-r", action="store_true", help="skip R (ours only)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    weeks = simulate_person_weeks(args.participants, seed=args.seed, max_days=args.max_days)
    t_sim = time.perf_counter() - t0
    t_fold, folded = timed(lambda: collapse(weeks), repeat=1)
    n_times = weeks.stop[weeks.event == 1].nunique()
    print(f"person-weeks: {len(weeks):,} rows, {args.participants:,} participants, "
          f"{int(weeks.event.sum()):,} events at {n_times:,} distinct times, {len(COVARIATES)} covariates "
          f"(simulated in {t_sim:.1f} s)")
    print(f"collapsed:    {len(folded):,} rows (pandas groupby {t_fold:.2f} s; DuckDB does this in SQL)")

    def ours(frame):
        w = frame["count"] if "count" in frame else None
        return fit_counting_cox(frame.start, frame.stop, frame.event, frame[COVARIATES], weights=w)

    t_exp, res = timed(lambda: ours(weeks))
    t_col, res_c = timed(lambda: ours(folded))
    print(f"fit_counting_cox, expanded:  {t_exp:.3f} s ({res.iterations} iterations)")
    print(f"fit_counting_cox, collapsed: {t_col:.3f} s (max rel. diff. to expanded: coef "
          f"{np.max(np.abs(res_c.coef / res.coef - 1)):.1e}, se {np.max(np.abs(res_c.se / res.se - 1)):.1e})")
    print(res.table().to_string(index=False))
    if args.no_r:
        return

    csv = args.workdir / "person_weeks.csv"
    weeks[["start", "stop", "event", *COVARIATES]].to_csv(csv, index=False)
    script = R_SCRIPT.format(csv=csv, terms=" + ".join(COVARIATES))
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    r = dict(line.split(maxsplit=1) for line in out.stdout.splitlines() if line.startswith("R_"))
    r_cox = float(r["R_COX"])
    r_coef = np.array(r["R_COEF"].split(","), float)
    r_se = np.array(r["R_SE"].split(","), float)
    print(f"R coxph (Efron), expanded:   {r_cox:.3f} s ({r['R_ITER'].strip()} iterations)")
    print(f"ours / R: expanded {t_exp / r_cox:.2f}, collapsed {t_col / r_cox:.2f} (target <= 2)")
    print(f"max rel. diff. to R (R's default eps 1e-9, ours tol 1e-10): coef "
          f"{np.max(np.abs(res.coef / r_coef - 1)):.1e}, se {np.max(np.abs(res.se / r_se - 1)):.1e}")


if __name__ == "__main__":
    main()
