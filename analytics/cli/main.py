"""Command line: `python -m analytics COMMAND ...`.

Every command takes --db (default: $OUTCOMES_DB, else data/outcomes.duckdb).
Exit codes: 0 success, 1 the input was refused, 2 usage or store error.
Each command group is a module of this package with a `register(subparsers)`; a new
command is a new module and one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import sys

from analytics.cli import analyses, assessments, audit, data, disclosure_key, outreach, report, users
from analytics.cli.common import error

COMMANDS = (data, analyses, outreach, assessments, report, users, audit, disclosure_key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from analytics.store.connection import StoreError

    try:
        return args.func(args)
    except (StoreError, ValueError) as exc:
        error(str(exc))
        return 2
