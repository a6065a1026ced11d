"""The server store's speed: imports, the load into DuckDB after an import, warm pages, five
concurrent users on two dashboard processes, and pages while an import runs; next to the embedded store.

    python benchmarks/bench_server.py [--participants 100000] [--users 5] [--rounds 3]
                                      [--skip-browser] [--profile DIR]

A throwaway PostgreSQL (tests/pg.py: Debian's binaries, a unix socket, fsync off) and a
synthetic data set of --participants (~85 attendance rows each). Prints, each figure with the
1-minute load average (the machine may be shared) and CPU seconds where wall time is noisy:
- import time, embedded vs server, and the ratio;
- first page after an import: a fresh process's load of the tables into its DuckDB mirror
  (server.load_tables), and per table the PostgreSQL read (ADBC, Arrow) vs the DuckDB insert;
- each page's analytics (bench_pages.page_calls: overview, cohorts, survival, data) cold
  (first run after the load) and warm (second run), server vs embedded;
- --users concurrent users on two processes, each running the pages' analytics in turn for
  --rounds rounds, without st.cache_data (every visit recomputes: an upper bound);
- the same users in Chromium on two real dashboard processes (`streamlit run`, signed in,
  pages opened from the sidebar, timed to the page drawn; a first round untimed fills each
  process's cache), with the dashboard processes' CPU; --profile DIR samples them with py-spy;
- pages (analytics, two processes) while a nightly-style import of 10% more participants runs
  in another process, and that import's time.
Targets (issue 15): load after an import < 10 s at 100k; five users p95 < 3 s at 20k.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import subprocess
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pages import CHARTS_DRAWN, CHROMIUM, CHROMIUM_ARGS, IDLE, PAGES as PAGE_VIEWS, SHOWN, App, \
    page_calls  # noqa: E402
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


def users_in_process(url: str, users: int, rounds: int, out: mp.Queue, go: mp.Event, stop: mp.Event) -> None:
    """`users` threads visiting the pages in turn for `rounds` rounds, or, with `stop`, until it
    is set and one round more. The mirror is loaded and each page run once before the clock
    starts, as in a dashboard process that has served for a while."""
    from analytics.store.connection import Store

    store = Store.open(url)
    store.mirror()
    for name in PAGES:
        run_page(store, name)
    times: list[tuple[float, float]] = []  # (when it ended, seconds)

    def user(offset: int) -> None:
        go.wait()
        r, last = 0, False
        while (r < rounds) if rounds else not last:
            last = stop.is_set()  # rounds 0: the round begun after `stop` is the last
            for i in range(len(PAGES)):
                times.append((time.time(), run_page(store, PAGES[(i + offset + r) % len(PAGES)])))
            r += 1

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    out.put("ready")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(times)


def concurrent(url: str, users: int, rounds: int, meanwhile=None) -> list[tuple[float, float]]:
    """(end time, seconds) of every page visit of `users` users on two processes. With
    `meanwhile` (rounds 0), it is called as the users start, and they go on until it returns."""
    ctx = mp.get_context("spawn")
    out, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    split = [users - users // 2, users // 2]
    procs = [ctx.Process(target=users_in_process, args=(url, n, rounds, out, go, stop)) for n in split if n]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get() == "ready"
    go.set()
    if meanwhile is not None:
        meanwhile()
        stop.set()
    times = [t for _ in procs for t in out.get()]
    for p in procs:
        p.join()
    return times


BENCH_USER, BENCH_PASSWORD = "bench", "a long benchmark passphrase"


async def browser_user(browser, url: str, rounds: int, offset: int, times: list[tuple[str, float]]) -> None:
    """One person in their own browser context: sign in, then open the pages in turn from the
    sidebar, timing each from the click to the page drawn (script idle, last element, charts)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(180_000)
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_label("User name").fill(BENCH_USER)
    await page.get_by_label("Password", exact=True).fill(BENCH_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector('[data-testid="stSidebarNav"]')
    await page.wait_for_selector(IDLE)
    for r in range(rounds):
        for i in range(len(PAGES)):
            name = PAGES[(i + offset + r) % len(PAGES)]
            title, *last = PAGE_VIEWS[name]
            start = time.perf_counter()
            await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
            await page.wait_for_function(SHOWN, arg=list(last), polling="raf")
            await page.wait_for_function(CHARTS_DRAWN, polling="raf")
            await page.wait_for_selector(IDLE)
            times.append((name, time.perf_counter() - start))
    await context.close()


def browser_users(url: str, users: int, rounds: int, work: Path,
                  profile: Path | None = None) -> list[tuple[str, float]]:
    """--users people in Chromium on two dashboard processes (streamlit run) on the server store:
    a first round untimed (each process's caches filled), then --rounds timed. With `profile`,
    py-spy samples both processes during the timed rounds (raw stacks, for flame graphs)."""
    import asyncio

    from playwright.async_api import async_playwright

    async def run(apps: list[App]) -> list[tuple[str, float]]:
        times: list[tuple[str, float]] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            await asyncio.gather(*(browser_user(browser, apps[k % 2].url, 1, k, []) for k in range(users)))
            spies = [subprocess.Popen(["py-spy", "record", "--pid", str(app.proc.pid), "--format", "raw",
                                       "--rate", "50", "--output", str(profile / f"{name}.txt")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for name, app in zip("ab", apps)] if profile else []
            await asyncio.gather(*(browser_user(browser, apps[k % 2].url, rounds, k, times) for k in range(users)))
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            await browser.close()
        return times

    with App(url, work / "a.log") as a, App(url, work / "b.log") as b:  # type: ignore[arg-type]
        before = [cpu_seconds(app.proc.pid) for app in (a, b)]
        times = asyncio.run(run([a, b]))
        used = [cpu_seconds(app.proc.pid) - t for app, t in zip((a, b), before)]
        print(f"  CPU of the two dashboard processes: {used[0]:.1f} s + {used[1]:.1f} s "
              f"(incl. sign-in and a first round not timed)")
        return times


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s, p95 {p95(times):.2f} s"


class Cpu:
    """CPU seconds of this process and of the PostgreSQL cluster (its postmaster and the
    backends it has reaped) between start and stop."""

    def __init__(self, server: PgServer) -> None:
        self.postmaster = int((server.data / "postmaster.pid").read_text().split()[0])

    def __enter__(self) -> Cpu:
        self.wall, self.ours, self.pg = time.perf_counter(), time.process_time(), cpu_seconds(self.postmaster)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.ours = time.process_time() - self.ours
        time.sleep(1)  # a closed connection's backend exits and is reaped (its CPU counted) a moment later
        self.pg = cpu_seconds(self.postmaster) - self.pg

    def __str__(self) -> str:
        return f"{self.wall:.2f} s (CPU: this process {self.ours:.1f} s, PostgreSQL {self.pg:.1f} s; {load()})"


def load_by_table(url: str) -> None:
    """Each table read whole from PostgreSQL into Arrow, then inserted into a fresh mirror."""
    from psycopg import IsolationLevel

    from analytics.store import server

    mirror = server.Mirror()
    cur = mirror.con.cursor()
    with server.connect(url) as conn:
        conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
        with server._Readers(server._View.of(conn), 1) as readers:
            for table in server.MIRRORED_TABLES:
                start = time.perf_counter()
                (whole,) = server._parts(conn, cur, table, part_blocks=1 << 40)
                arrow = readers.fetch(whole)
                read = time.perf_counter() - start
                start = time.perf_counter()
                server._insert_arrow(cur, table, arrow)
                print(f"  {table:<15} {arrow.num_rows:>11,} rows: PostgreSQL -> Arrow {read:6.2f} s, "
                      f"DuckDB insert {time.perf_counter() - start:5.2f} s ({load()})")


def night_batch(participants: int, folder: Path) -> Path:
    """A nightly batch: new participants (IDs the first data set does not use) and their activity."""
    from analytics.ingest import synthetic

    folder.mkdir(parents=True)
    for name, frame in synthetic.generate(participants=participants, seed=7).items():
        frame["participant_id"] = "N-" + frame["participant_id"]
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def pages_during_import(url: str, batch: Path, users: int) -> None:
    """The nightly import as its own process (the CLI) while `users` users work, and one round after it."""
    repo = Path(__file__).resolve().parents[1]
    span: list[float] = []

    def night() -> None:
        span.append(time.time())
        done = subprocess.run([sys.executable, "-m", "analytics", "import", str(batch), "--db", url], cwd=repo,
                              env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
        span.append(time.time())
        assert done.returncode == 0, done.stdout + done.stderr

    times = concurrent(url, users, 0, meanwhile=night)
    during = [t for end, t in times if end <= span[1]]
    after = [t for end, t in times if end > span[1]]
    print(f"import of {batch.name} (the CLI, its own process) while {users} users work: "
          f"{span[1] - span[0]:.1f} s ({load()})")
    print(f"  pages while it ran: {len(during)} visits" + (f", {spread(during)}" if during else ""))
    if after:
        print(f"  pages after it (each process loads the new version first): {len(after)} visits, {spread(after)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-browser", action="store_true", help="leave out the users in Chromium")
    parser.add_argument("--profile", type=Path, help="py-spy the dashboard processes; raw stacks into this folder")
    args = parser.parse_args()

    from analytics.access import users as accounts
    from analytics.ingest import synthetic
    from analytics.store.connection import Store

    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    folder = work / "data"
    synthetic.write_sample(folder, participants=args.participants, seed=20261203)
    server = PgServer()
    try:
        url = server.url(server.new_database(), OWNER)
        start = time.process_time()
        with Store.open(work / "e.duckdb") as embedded:
            t_embedded, cpu_embedded = timed_import(embedded, folder), time.process_time() - start
        with Store.open(url) as pg:
            with Cpu(server) as cpu:
                t_server = timed_import(pg, folder)
            rows = pg.scalar("SELECT count(*) FROM attendance")
            accounts.add_user(pg, BENCH_USER, "director", BENCH_PASSWORD)
        print(f"{args.participants:,} participants, {rows:,} attendance rows")
        print(f"import: embedded {t_embedded:.1f} s (CPU {cpu_embedded:.1f} s), server {cpu} "
              f"(x{t_server / t_embedded:.2f} wall)")

        with Store.open(url) as pg, Store.open(work / "e.duckdb", read_only=True) as embedded:
            with Cpu(server) as cpu:
                pg.mirror()
            print(f"first page after an import: load into DuckDB {cpu} (target < 10 s)")
            load_by_table(url)
            print(f"{'page':<10} {'server cold':>12} {'server warm':>12} {'embedded warm':>14}")
            for name in PAGES:
                cold, warm = run_page(pg, name), run_page(pg, name)
                run_page(embedded, name)
                print(f"{name:<10} {cold:>11.2f}s {warm:>11.2f}s {run_page(embedded, name):>13.2f}s  ({load()})")
        times = [t for _, t in concurrent(url, args.users, args.rounds)]
        print(f"{args.users} concurrent users on 2 processes, analytics without st.cache_data, {len(times)} page "
              f"visits: {spread(times)} ({load()})")
        if not args.skip_browser:
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            visits = [t for _, t in browser_users(url, args.users, args.rounds, work, args.profile)]
            print(f"{args.users} users in Chromium on 2 dashboard processes, {len(visits)} page visits: "
                  f"{spread(visits)} (target p95 < 3 s at 20k; {load()}; the browsers run on the same machine)")
        pages_during_import(url, night_batch(max(args.participants // 10, 100), work / "night"), args.users)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
