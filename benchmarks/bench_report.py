"""Outcome report speed: the sample store and a store of 100,000 participants.

    python benchmarks/bench_report.py [--participants 100000] [--workdir DIR]

Prints the time to gather the numbers (build) and to draw the PDF (render, with the
kept chart browser already started), and the whole `write_report`, per store.
Targets (issue 6): the full report under 20 s for the sample, under 60 s at 100k.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


import plotly.graph_objects as go  # noqa: E402

from analytics.charts import render as chart_export  # noqa: E402
from analytics.publish import report
from analytics.ingest.bootstrap import ensure_store  # noqa: E402
from analytics.outcomes.period import Period, default_period  # noqa: E402
from analytics.store.connection import Store  # noqa: E402
from bench_survival import build_store  # noqa: E402


def bench(label: str, db: Path, out: Path) -> None:
    with Store.open(db) as store:
        period = Period.last_days(default_period(store).end, 365)
        start = time.perf_counter()
        built = report.build(store, period)
        gathered = time.perf_counter() - start
        start = time.perf_counter()
        report.render_pdf(built)
        drawn = time.perf_counter() - start
        start = time.perf_counter()
        data = report.write_report(store, period, str(out))
        whole = time.perf_counter() - start
    print(f"{label:<28} build {gathered:6.2f} s   render {drawn:6.2f} s   whole report {whole:6.2f} s "
          f"({len(data) / 1024:,.0f} KB, period {period.start} to {period.end})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-survival")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    chart_export.export(go.Figure(), "svg")
    print(f"{'chart browser start':<28} {time.perf_counter() - start:6.2f} s")
    sample = ensure_store(args.workdir / "sample-report.duckdb")
    bench("sample store (800)", sample, args.workdir / "report-sample.pdf")
    big = build_store(args.workdir, args.participants)
    bench(f"{args.participants:,} participants", big, args.workdir / "report-big.pdf")
    chart_export.shutdown()


if __name__ == "__main__":
    main()
