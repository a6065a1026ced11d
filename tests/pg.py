"""A real PostgreSQL for the server-store tests, started from Debian's binaries.

A cluster in a temporary folder (initdb + pg_ctl), reachable only through a unix socket in
that folder: no network, no service outside the test run. initdb refuses to run as root, so
as root the cluster runs as the `postgres` system user (Debian's package creates it).
Each test gets a fresh database owned by OWNER; APP is the application's role, granted
what the setup grants it (no UPDATE or DELETE on the audit log).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
OWNER, APP = "outcomes_owner", "outcomes_app"


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgServer:
    """One throwaway cluster; `url(db, user)` addresses a database in it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="outcomes-pg-"))
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self._numbers = itertools.count(1)
        subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                     "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                                     "-o", f"-c listen_addresses='' -k {self.root} -c fsync=off -c max_connections=200",
                                     "start"]), check=True, capture_output=True)
        with self.connect() as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN")
            conn.execute(f"CREATE ROLE {APP} LOGIN")

    def url(self, db: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{db}?host={self.root}&port=5432"

    def connect(self, db: str = "postgres", user: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(db, user), autocommit=True)

    def new_database(self) -> str:
        name = f"outcomes_{next(self._numbers)}"
        with self.connect() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {OWNER}")
        return name

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_db(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database, its tables made by the owner with the app role granted; the app's URL."""
    from analytics.settings import PG_APP_ROLE
    from analytics.store.server import ServerStore

    name = pg_server.new_database()
    monkeypatch.setenv(PG_APP_ROLE.env, APP)
    ServerStore.open(pg_server.url(name, OWNER)).close()
    monkeypatch.delenv(PG_APP_ROLE.env)
    return pg_server.url(name, APP)
