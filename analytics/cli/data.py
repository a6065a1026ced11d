"""Commands that load and describe the store: import, sample, summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from analytics.cli.common import say, with_db


def cmd_import(args: argparse.Namespace) -> int:
    from analytics.analyses import summary
    from analytics.ingest import importer
    from analytics.store.connection import Store, is_server_url, resolve_path

    path = resolve_path(args.db)
    nothing_yet = args.dry_run and not is_server_url(path) and not path.exists()
    store = Store.open(memory=True) if nothing_yet else Store.open(path)
    with store:
        result = importer.import_files(store, args.paths, dry_run=args.dry_run, progress=say)
    if args.report:
        Path(args.report).write_text(importer.problems_csv(result.problems), encoding="utf-8")
    print(summary.format_import(result, store.path or path))
    return 0 if result.ok else 1


def cmd_sample(args: argparse.Namespace) -> int:
    from analytics.ingest import synthetic

    paths = synthetic.write_sample(args.out, participants=args.participants, seed=args.seed, progress=say)
    for name, file in paths.items():
        print(f"{name:<13} {file}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from analytics.analyses import summary
    from analytics.store.connection import Store

    with Store.open(args.db, read_only=True) as store:
        print(summary.format_summary(summary.store_summary(store)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser("import", help="validate and load CSV/XLSX files or folders"))
    p.add_argument("paths", nargs="+", help="files or folders in the import format")
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    p.add_argument("--report", metavar="FILE", help="write every problem found to FILE as CSV")
    p.set_defaults(func=cmd_import)

    p = with_db(sub.add_parser("sample", help="write a synthetic data set in the import format"))
    p.add_argument("--out", required=True, help="folder to write the four CSV files to")
    p.add_argument("--participants", type=int, default=800)
    p.add_argument("--seed", type=int, default=20261127)
    p.set_defaults(func=cmd_sample)

    p = with_db(sub.add_parser("summary", help="what the store holds: counts, dates, programs, imports"))
    p.set_defaults(func=cmd_summary)
