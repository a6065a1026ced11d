"""The outreach ranking at 100,000 participants: the first view (the window table, the model
and its 13-cutoff backtest), then a cached view, and the backtest figures.

    python benchmarks/bench_outreach.py [--participants 100000] [--workdir DIR]

Target (issue 13): the Engagement page's first view of the outreach list (model + backtest)
under 5 s on the 2-core machine; cached per import after that (the page caches through
dashboard.common.cached, keyed by the store's last import).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_survival import build_store  # noqa: E402

from analytics.analyses.outreach import outreach, outreach_text  # noqa: E402
from analytics.outcomes.filters import Filters  # noqa: E402
from analytics.store.connection import Store  # noqa: E402
from analytics.analyses.outreach import windows  # noqa: E402
from analytics.store.queries.outreach import outreach_activity, outreach_people  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "outreach-bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build_store(args.workdir, args.participants)
    with Store.open(db, read_only=True) as store:
        as_of = store.scalar("SELECT max(attended_on) FROM attendance")
        runs, cpu = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            people = outreach_people(store, Filters(), as_of)
            activity = outreach_activity(store, Filters(), as_of, 28)
            query = time.perf_counter() - start
            start = time.perf_counter()
            table = windows(people, activity, 28, 30)
            build = time.perf_counter() - start
            start, start_cpu = time.perf_counter(), time.process_time()
            result = outreach(store)
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"participants: {args.participants:,}; window rows: {len(table):,}; "
              f"events in the model: {result.model.events:,}")
        print(f"the two queries: {query:.2f} s; the window table from them (numpy): {build:.2f} s")
        print(f"FIRST VIEW (queries + windows + today's model + 13 refits and the backtest): median "
              f"{statistics.median(runs):.2f} s wall (runs: {', '.join(f'{r:.2f}' for r in runs)}), "
              f"{statistics.median(cpu):.2f} s CPU in this process; target < 5 s")
        print(f"(load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on "
              f"{os.cpu_count()} cores)")
        print(outreach_text(result, top=5))


if __name__ == "__main__":
    main()
