"""The server store's speed: imports, the load into DuckDB after an import, warm pages, and
five concurrent users on two processes, next to the embedded store.

    python benchmarks/bench_server.py [--participants 100000] [--users 5] [--rounds 3]

A throwaway PostgreSQL (tests/pg.py: Debian's binaries, a unix socket, fsync off) and a
synthetic data set of --participants (~100 attendance rows each). Prints:
- import time, embedded vs server, and the ratio;
- first page after an import: a fresh process's load of the tables into its DuckDB mirror;
- each page's analytics (bench_pages.page_calls: overview, cohorts, survival, data) cold
  (first run after the load) and warm (second run), server vs embedded;
- --users concurrent users spread over two processes, each visiting the pages in turn for
  --rounds rounds: median and p95 seconds per page. These are the pages' analytics calls
  without st.cache_data (every visit recomputes): an upper bound for a real dashboard,
  where a second visit at the same data version is a cache hit.
Targets (issue 15): load after an import < 10 s at 100k; five users p95 < 3 s at 20k.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pages import page_calls  # noqa: E402
from tests.pg import OWNER, PgServer  # noqa: E402

PAGES = ("overview", "cohorts", "survival", "data")


def run_page(store, name: str) -> float:
    start = time.perf_counter()
    sidebar, calls = page_calls(name)
    sidebar(store)
    for _, call in calls:
        call(store)
    return time.perf_counter() - start


def timed_import(store, folder: Path) -> float:
    from analytics.access import roles as access
    from analytics.ingest.importer import import_files

    start = time.perf_counter()
    with access.acting_as(access.SYSTEM):
        result = import_files(store, [folder])
    assert result.ok, result.problems[:3]
    return time.perf_counter() - start


def users_in_process(url: str, users: int, rounds: int, out: mp.Queue, go: mp.Event) -> None:
    from analytics.store.connection import Store

    store = Store.open(url)
    store.mirror()  # loaded before the clock starts, as a running dashboard would have it
    times: list[float] = []

    def user(offset: int) -> None:
        go.wait()
        for r in range(rounds):
            for i in range(len(PAGES)):
                times.append(run_page(store, PAGES[(i + offset + r) % len(PAGES)]))

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    out.put("ready")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(times)


def concurrent(url: str, users: int, rounds: int) -> list[float]:
    ctx = mp.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    split = [users - users // 2, users // 2]
    procs = [ctx.Process(target=users_in_process, args=(url, n, rounds, out, go)) for n in split if n]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get() == "ready"
    go.set()
    times = [t for _ in procs for t in out.get()]
    for p in procs:
        p.join()
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from analytics.ingest import synthetic
    from analytics.store.connection import Store

    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    folder = work / "data"
    synthetic.write_sample(folder, participants=args.participants, seed=20261203)
    server = PgServer()
    try:
        url = server.url(server.new_database(), OWNER)
        with Store.open(work / "e.duckdb") as embedded:
            t_embedded = timed_import(embedded, folder)
        with Store.open(url) as pg:
            t_server = timed_import(pg, folder)
            rows = pg.scalar("SELECT count(*) FROM attendance")
        print(f"{args.participants:,} participants, {rows:,} attendance rows")
        print(f"import: embedded {t_embedded:.1f} s, server {t_server:.1f} s (x{t_server / t_embedded:.2f})")

        with Store.open(url) as pg, Store.open(work / "e.duckdb", read_only=True) as embedded:
            start = time.perf_counter()
            pg.mirror()
            print(f"first page after an import: load into DuckDB {time.perf_counter() - start:.2f} s (target < 10 s)")
            print(f"{'page':<10} {'server cold':>12} {'server warm':>12} {'embedded warm':>14}")
            for name in PAGES:
                cold, warm = run_page(pg, name), run_page(pg, name)
                run_page(embedded, name)
                print(f"{name:<10} {cold:>11.2f}s {warm:>11.2f}s {run_page(embedded, name):>13.2f}s")
        times = concurrent(url, args.users, args.rounds)
        print(f"{args.users} concurrent users on 2 processes, {len(times)} page visits: "
              f"median {statistics.median(times):.2f} s, p95 {p95(times):.2f} s (target p95 < 3 s at 20k)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
