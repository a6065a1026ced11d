"""How long the command line takes as a whole process, and how much of it is Python start-up and imports.

    python benchmarks/bench_cli.py [--participants 100000] [--repeat 5] [--baseline DIR]

Prints, as medians of --repeat runs, wall-clock and CPU seconds (user + system of the child,
which a busy machine inflates less than wall time) of:
  bare       python -c pass
  help       python -m analytics --help
  imports    the modules `survival` loads (cli, analyses.survival, stats.cox), nothing run
  survival   python -m analytics survival --outcome retention --by program --json, 100k participants
  no --by    the same without --by: no Cox model, so no lifelines
then the share of the survival command that is start-up and imports, and the heaviest imports
of one run under `python -X importtime`. With --baseline DIR (another checkout, e.g. from
`git archive`), the same rows for that tree's `analytics` package, side by side.
The store is built once with bench_survival.build_store and kept under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_survival import build_store

REPO = Path(__file__).resolve().parents[1]
IMPORTS = "import analytics.cli.main, analytics.analyses.survival, analytics.stats.cox"


def cases(db: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {"bare": [py, "-c", "pass"],
            "help": [py, "-m", "analytics", "--help"],
            "imports": [py, "-c", IMPORTS],
            "survival": [py, "-m", "analytics", "survival", "--outcome", "retention", "--by", "program",
                         "--json", "--db", str(db)],
            "no --by": [py, "-m", "analytics", "survival", "--outcome", "retention", "--json", "--db", str(db)]}


def run_once(cmd: list[str], tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `cmd` with `tree` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def measure(cmd: list[str], tree: Path, repeat: int) -> tuple[float, float]:
    runs = [run_once(cmd, tree) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def heaviest_imports(cmd: list[str], tree: Path, top: int = 8) -> tuple[float, list[tuple[str, float]]]:
    """Seconds spent importing (sum of self times) and the top-level packages that cost most."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=tree, env=env, capture_output=True,
                         text=True, check=True).stderr
    per_package: collections.Counter[str] = collections.Counter()
    for self_us, module in re.findall(r"^import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", out, re.M):
        per_package[module.split(".")[0]] += int(self_us) / 1e6
    return sum(per_package.values()), per_package.most_common(top)


def report(name: str, tree: Path, db: Path, repeat: int) -> dict[str, tuple[float, float]]:
    rows = {label: measure(cmd, tree, repeat) for label, cmd in cases(db).items()}
    print(f"\n{name} ({tree})")
    print(f"  {'':<10} {'wall s':>8} {'cpu s':>8}")
    for label, (wall, cpu) in rows.items():
        print(f"  {label:<10} {wall:8.2f} {cpu:8.2f}")
    whole_wall, whole_cpu = rows["survival"]
    for what, key in (("Python start-up", "bare"), ("start-up + imports", "imports")):
        wall, cpu = rows[key]
        print(f"  {what} is {wall / whole_wall:.0%} of the survival command's wall time, "
              f"{cpu / whole_cpu:.0%} of its CPU time")
    spent, top = heaviest_imports(cases(db)["survival"], tree)
    print(f"  -X importtime: {spent:.2f} s importing; heaviest: "
          + ", ".join(f"{pkg} {s:.2f}" for pkg, s in top))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (its analytics/ is used)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build_store(args.workdir, args.participants).resolve()
    print(f"store: {db} ({args.participants:,} participants); medians of {args.repeat} runs; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.baseline:
        report("baseline", args.baseline.resolve(), db, args.repeat)
    report("this tree", REPO, db, args.repeat)


if __name__ == "__main__":
    main()
