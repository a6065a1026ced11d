"""Commands on the audit log: verify that no entry was changed or removed."""

from __future__ import annotations

import argparse

from analytics.cli.common import with_db


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the hash chain is whole, 1 with the first broken entry."""
    from analytics.access.audit import first_broken, size
    from analytics.store.connection import Store

    with Store.open(args.db, read_only=True) as store:
        count = size(store)
        broken = first_broken(store)
    if broken is None:
        print(f"audit log intact: {count:,} entries, each hash follows from the one before")
        return 0
    seq, why = broken
    print(f"audit log broken at entry {seq}: {why}")
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="the audit log: verify its hash chain")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    p = with_db(verbs.add_parser("verify", help="check that no entry was edited or deleted (exit 1 if one was)"))
    p.set_defaults(func=cmd_verify)
