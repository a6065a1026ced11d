"""`copy-disclosure-key`: give a store another store's cell-key secret (analytics.publish.cellkey).

Why: each store makes its own secret, so a team moving from the embedded DuckDB file to the
server store would get new noise on every count, and a file published before the move
differenced with one after gives the hidden count back (two independent noises average out).
Copying the old store's secret keeps every count's noise. A destination that already published
exports or reports with its own secret is refused unless --force: those files would then be
differenced against the new ones in the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analytics.cli.common import error, with_db


def _name(target: object) -> str:
    """A store as messages name it: a file's path, a server's address without its password."""
    from analytics.store.connection import is_server_url

    if is_server_url(target):
        from analytics.store.server import display  # here: psycopg only for a server store

        return display(str(target))
    return str(target)


def _denied(exc: Exception) -> bool:
    """PostgreSQL refused the write: the application's role may only read the secret."""
    import psycopg  # here: only when the write failed

    return isinstance(exc, psycopg.errors.InsufficientPrivilege)


def _same(a: Path | str, b: Path | str) -> bool:
    return a.resolve() == b.resolve() if isinstance(a, Path) and isinstance(b, Path) else str(a) == str(b)


def cmd_copy(args: argparse.Namespace) -> int:
    """Exit 0 when the destination holds the source's secret, 1 when refused (nothing changed)."""
    from analytics.access import audit
    from analytics.store.connection import Store, StoreError, resolve_path
    from analytics.store.queries import disclosure as q

    source, dest = resolve_path(args.source), resolve_path(args.db)
    if _same(source, dest):
        raise ValueError(f"--from and --db are the same store ({_name(dest)})")
    if isinstance(dest, Path) and not dest.exists():
        raise StoreError(f"no store at {dest}: copy the secret into an existing store")
    with Store.open(source, read_only=True) as src:
        secret = q.cell_key_secret(src)
    with Store.open(dest) as store:
        if q.cell_key_secret(store) == secret:
            print(f"{_name(dest)} already has the cell-key secret of {_name(source)}: nothing changed")
            return 0
        published, latest = q.outputs_with_key(store)
        if published and not args.force:
            error(f"{_name(dest)} has {published:,} exports or reports (the latest {latest:%Y-%m-%d %H:%M}) "
                  "made with its own cell-key secret; with another secret their counts could be differenced "
                  "against new files. Nothing changed. Use --force to copy the secret anyway.")
            return 1
        try:
            with store.transaction() as db:
                q.set_cell_key_secret(db, secret)
                audit.record(db, q.KEY_EVENT, "cell-key secret copied", source=_name(source),
                             forced=bool(published), outputs_with_old_key=published)
        except Exception as exc:
            if _denied(exc):
                raise StoreError(f"{_name(dest)} refused to change its cell-key secret: run this command as the "
                                 f"database's owner (as for upgrades). Nothing changed. {exc}".strip()) from exc
            raise
    print(f"copied the cell-key secret of {_name(source)} to {_name(dest)}: every count is "
          "now perturbed as the source perturbs it" + (f" ({published:,} earlier outputs of the destination "
                                                       "were made with its old secret: --force)" if published else "")
          + ". Restart running dashboards of this store: they may hold results keyed with the old secret.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser(
        "copy-disclosure-key", help="give the store (--db) the cell-key secret of another store (--from), so "
                                    "counts keep their noise after moving stores (e.g. to PostgreSQL)"))
    p.add_argument("--from", dest="source", required=True, metavar="STORE",
                   help="the store whose secret to copy: a DuckDB file or a postgresql:// address")
    p.add_argument("--force", action="store_true",
                   help="copy even though the destination already published exports or reports with its own secret")
    p.set_defaults(func=cmd_copy)
