"""Command line: `python -m analytics COMMAND ...`.

Every command takes --db (default: $OUTCOMES_DB, else data/outcomes.duckdb).
Exit codes: 0 success, 1 the input was refused, 2 usage or store error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics import importer, summary
from analytics.store import Store, StoreError, resolve_path


def _say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def cmd_import(args: argparse.Namespace) -> int:
    path = resolve_path(args.db)
    if args.dry_run and not path.exists():
        store = Store.open(memory=True)
    else:
        store = Store.open(path)
    with store:
        result = importer.import_files(store, args.paths, dry_run=args.dry_run, progress=_say)
    if args.report:
        Path(args.report).write_text(importer.problems_csv(result.problems), encoding="utf-8")
    print(summary.format_import(result, path))
    return 0 if result.ok else 1


def cmd_sample(args: argparse.Namespace) -> int:
    from analytics import synthetic

    paths = synthetic.write_sample(args.out, participants=args.participants, seed=args.seed, progress=_say)
    for name, file in paths.items():
        print(f"{name:<13} {file}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    with Store.open(args.db, read_only=True) as store:
        print(summary.format_summary(summary.store_summary(store)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="store file (default: $OUTCOMES_DB, else data/outcomes.duckdb)")
        return p

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
