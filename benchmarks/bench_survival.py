"""Survival speed on a store of 100,000 participants, against R's survival on the same data.

    python benchmarks/bench_survival.py [--participants 100000] [--workdir DIR] [--stages]

Prints: durations (SQL), Kaplan-Meier + log-rank for 4 groups, a Cox model with 5
categorical covariates, and R's survfit/survdiff and coxph on the same durations, ours
beside R's. Targets: durations + KM + log-rank under 1 s; Cox no slower than R (issue 11).
--stages: also the stages of `survival --outcome sobriety --by program --json` (what the
CLI runs), to see which part grows faster than the data. Stores are kept in --workdir
(benchmarks/out/ is git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from analytics.ingest import importer  # noqa: E402
from analytics.stats import survival
from analytics.ingest import synthetic
from analytics.stats.cox import fit_cox  # noqa: E402
from analytics.outcomes.definitions import durations  # noqa: E402
from analytics.store.connection import Store  # noqa: E402

COVARIATES = ["program", "age_band", "primary_substance", "cohort_year", "referral_source"]


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def build_store(work: Path, participants: int) -> Path:
    db = work / f"survival-{participants}.duckdb"
    if not db.exists():
        synthetic.write_sample(work / "data", participants=participants)
        with Store.open(db) as store:
            assert importer.import_files(store, [work / "data"]).ok
    return db


def km_and_logrank(frame):
    groups = frame.age_band.where(frame.age_band.isin(["18-24", "25-34", "35-44"]), "45+")
    curves = {g: survival.kaplan_meier(s.days, s.event) for g, s in frame.groupby(groups)}
    summaries = [survival.summarize_group(g, km) for g, km in curves.items()]
    return summaries, survival.logrank(frame.days, frame.event, groups)


R_SCRIPT = """
suppressMessages(library(survival))
d <- read.csv("{csv}")
d$event <- as.logical(d$event)
d$grp <- ifelse(d$age_band %in% c("18-24", "25-34", "35-44"), d$age_band, "45+")
t <- function(f) median(replicate(3, system.time(f())[["elapsed"]]))  # f(): re-run each time
cat(sprintf("R_KM %.4f\\n", t(function() {{ f <- survfit(Surv(days, event) ~ grp, data = d, conf.type = "log-log");
    s <- summary(f); survdiff(Surv(days, event) ~ grp, data = d) }})))
cat(sprintf("R_COX %.4f\\n", t(function() coxph(Surv(days, event) ~ program + age_band + primary_substance +
    cohort_year + referral_source, data = d, ties = "efron"))))
"""


def stage_times(store: Store, outcome: str = "sobriety", by: str = "program") -> dict[str, float]:
    """Seconds per stage of analyses.survival.analyse(store, outcome, by=by) and its JSON."""
    import json

    from analytics.analyses import survival as analysis
    from analytics.stats import competing

    out: dict[str, float] = {}

    def stage(name, fn):
        start = time.perf_counter()
        result = fn()
        out[name] = time.perf_counter() - start
        return result

    frame = stage("durations (SQL)", lambda: durations(store, outcome)).frame
    labels = frame[by].astype(str)
    groups = stage("split into groups", lambda: {g: s for g, s in frame.groupby(labels)})
    curves = stage("KM + medians/RMST", lambda: {g: survival.summarize_group(g, survival.kaplan_meier(
        s.days.to_numpy(), s.event.to_numpy())) for g, s in groups.items()})
    stage("numbers at risk", lambda: [survival.risk_table(s.days, s.event, analysis.risk_times(frame.days.max()))
                                      for s in groups.values()])
    stage("log-rank", lambda: survival.logrank(frame.days, frame.event, labels))
    stage("pairwise log-rank", lambda: survival.pairwise_logrank(frame.days, frame.event, labels))
    stage("Cox + cox.zph", lambda: fit_cox(frame, [by]))
    if outcome == "retention":
        stage("competing risks", lambda: [competing.cumulative_incidence(s.days, s.event_type) for s in groups.values()])
    result = stage("whole analyse()", lambda: analysis.analyse(store, outcome, by=by))
    stage("to JSON", lambda: json.dumps(result.to_json()))
    del curves
    return out


def cli_seconds(db: Path, outcome: str = "sobriety", by: str = "program") -> tuple[float, float]:
    """Wall seconds of the whole CLI process, and of `python -c "import analytics.cli.main"`."""
    def run(args: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        return time.perf_counter() - start

    whole = run(["-m", "analytics", "survival", "--db", str(db), "--outcome", outcome, "--by", by, "--json"])
    return whole, run(["-c", "import analytics.cli.main"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--stages", action="store_true", help="also time the stages of the survival CLI")
    parser.add_argument("--no-r", action="store_true", help="skip R")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build_store(args.workdir, args.participants)
    with Store.open(db, read_only=True) as store:
        t_dur, dur = timed(lambda: durations(store, "retention"))
        frame = dur.frame
        t_km, _ = timed(lambda: km_and_logrank(frame))
        t_all, _ = timed(lambda: km_and_logrank(durations(store, "retention").frame))
        t_cox, cox = timed(lambda: fit_cox(frame, COVARIATES))
        stages = stage_times(store) if args.stages else {}
    print(f"store: {db} ({dur.n:,} participants followed, {dur.events:,} events)")
    print(f"durations (SQL):                          {t_dur:.3f} s")
    print(f"KM + medians/RMST + log-rank, 4 groups:   {t_km:.3f} s")
    print(f"durations + KM + log-rank, 4 groups:      {t_all:.3f} s (target < 1 s)")
    print(f"Cox, 5 categorical covariates ({len(cox.terms)} terms): {t_cox:.3f} s")
    if stages:
        print("survival --outcome sobriety --by program --json, by stage:")
        for name, secs in stages.items():
            print(f"  {name:<28} {secs:.3f} s")
        whole, imports = cli_seconds(db)
        print(f"  whole CLI process            {whole:.3f} s (of which Python start-up + imports {imports:.3f} s)")
    if args.no_r:
        return
    csv = args.workdir / "durations.csv"
    frame[["days", "event", *COVARIATES, "age_band"]].loc[:, lambda f: ~f.columns.duplicated()].to_csv(csv, index=False)
    out = subprocess.run(["Rscript", "-e", R_SCRIPT.format(csv=csv)], capture_output=True, text=True, check=True)
    r = dict(line.split() for line in out.stdout.splitlines() if line.startswith("R_"))
    r_km, r_cox = float(r["R_KM"]), float(r["R_COX"])
    print(f"R survfit + summary + survdiff:           {r_km:.3f} s  -> ours / R = {t_km / r_km:.2f} "
          "(statistics only, same durations)")
    print(f"Cox, 5 categorical covariates: ours {t_cox:.3f} s, R coxph (Efron) {r_cox:.3f} s "
          f"-> ours / R = {t_cox / r_cox:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
