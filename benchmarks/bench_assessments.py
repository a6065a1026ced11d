"""Recovery capital at 100k participants: import of assessments.csv, the schedule SQL, the whole
analysis (compliance, change, growth model, engagement), the due-soon list.

    python benchmarks/bench_assessments.py [--participants 100000] [--seed 20261127]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from analytics.analyses import assessments as A
from analytics.ingest import importer, synthetic
from analytics.outcomes.assessments import MONTH_DAYS, AssessmentSettings
from analytics.outcomes.filters import Filters
from analytics.stats.growth import fit_growth
from analytics.store.connection import Store
from analytics.store.queries import assessments as q


def timed(label: str, func):
    start = time.perf_counter()
    out = func()
    print(f"{label:<38} {time.perf_counter() - start:7.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        timed(f"simulate {args.participants:,} participants", lambda: synthetic.write_sample(folder, args.participants, args.seed))
        rows = sum(1 for _ in open(folder / "assessments.csv")) - 1
        print(f"assessments.csv: {rows:,} rows")
        store = Store.open(Path(tmp) / "s.duckdb")
        timed("import all five files", lambda: importer.import_files(store, [folder]))
        settings = AssessmentSettings()
        cutoff = A.resolve_cutoff(store, settings)
        frame = timed("schedule (SQL)", lambda: A.schedule_frame(store, Filters(), settings, cutoff))
        print(f"schedule rows: {len(frame):,}")
        traj = q.trajectories(store, Filters(), instrument="barc10", cutoff=cutoff, before=30, month_days=MONTH_DAYS)
        g = timed(f"growth model ({len(traj):,} assessments)", lambda: fit_growth(traj))
        print(f"  slope {g.slope:.4f} per month, {g.n_people:,} people")
        r = timed("whole analysis (cold)", lambda: A.analyse_assessments(store, Filters(), settings))
        print(f"  baseline {r.baseline_n:,}, due {r.due:,}, done {r.done:,}, change n {r.change.n:,}")
        soon = timed("due-soon list", lambda: A.due_soon(store, Filters(), settings))
        print(f"  {len(soon):,} due soon")
        store.close()


if __name__ == "__main__":
    main()
