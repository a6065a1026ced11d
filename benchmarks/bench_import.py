"""Import speed: our validated import of ~10M attendance rows vs a bare DuckDB read_csv.

Also times the synthetic generator at the same size. Prints figures; asserts nothing.

    python benchmarks/bench_import.py [--participants 100000] [--repeat 3] [--workdir DIR]

The bare baseline is `CREATE TABLE t AS SELECT * FROM read_csv(file)` into a fresh
DuckDB file, closed afterwards. The import loads the participants first (not timed), then
times `import_files` of attendance.csv alone: header checks, typed read, every row rule,
the duplicate-key check, the insert, the import log and the checkpoint.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


import duckdb  # noqa: E402

from analytics.ingest import importer  # noqa: E402
from analytics.ingest import synthetic
from analytics.store.connection import Store  # noqa: E402


def bare_read(csv: Path, db: Path) -> float:
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv)])
    con.close()
    return time.perf_counter() - start


def our_import(folder: Path, db: Path) -> float:
    db.unlink(missing_ok=True)
    with Store.open(db) as store:
        assert importer.import_files(store, [folder / "participants.csv"]).ok
        start = time.perf_counter()
        result = importer.import_files(store, [folder / "attendance.csv"])
        elapsed = time.perf_counter() - start
    assert result.ok, result.problems[:5]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    start = time.perf_counter()
    synthetic.write_sample(data, participants=args.participants)
    generated = time.perf_counter() - start
    with duckdb.connect() as con:
        rows = con.execute("SELECT count(*) FROM read_csv(?)", [str(data / "attendance.csv")]).fetchone()[0]
    size = (data / "attendance.csv").stat().st_size / 1e6
    print(f"generator: {args.participants:,} participants in {generated:.1f} s "
          f"({rows:,} attendance rows, {size:.0f} MB)")
    bare, ours = [], []
    for _ in range(args.repeat):
        bare.append(bare_read(data / "attendance.csv", work / "bare.duckdb"))
        ours.append(our_import(data, work / "ours.duckdb"))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"bare read_csv into a table: {b:.2f} s (runs: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"validated import:           {o:.2f} s (runs: {', '.join(f'{x:.2f}' for x in ours)})")
    print(f"ratio import / bare:        {o / b:.2f}  (target <= 1.50)")


if __name__ == "__main__":
    main()
