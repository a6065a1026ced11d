"""Command line: `python -m analytics COMMAND ...`.

Every command takes --db (default: $OUTCOMES_DB, else data/outcomes.duckdb).
Exit codes: 0 success, 1 the input was refused, 2 usage or store error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from analytics.ingest import importer
from analytics.analyses import summary
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import GROUP_COLUMNS, OUTCOMES, OutcomeSettings
from analytics.store.connection import Store, StoreError, resolve_path


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
    from analytics.ingest import synthetic

    paths = synthetic.write_sample(args.out, participants=args.participants, seed=args.seed, progress=_say)
    for name, file in paths.items():
        print(f"{name:<13} {file}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    with Store.open(args.db, read_only=True) as store:
        print(summary.format_summary(summary.store_summary(store)))
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(programs=tuple(args.program or ()), sites=tuple(args.site or ()),
                   enrolled_from=args.enrolled_from, enrolled_to=args.enrolled_to)


def _print_analysis(args: argparse.Namespace, analyse, format_text, **kwargs) -> int:
    """Run one analysis on a read-only store; JSON or text; exit 1 when the filters leave nobody."""
    from analytics.analyses.survival import NoData

    settings = OutcomeSettings(cutoff=args.cutoff, inactivity_days=args.inactivity_days)
    with Store.open(args.db, read_only=True) as store:
        try:
            result = analyse(store, args.outcome, settings=settings, filters=_filters(args), **kwargs)
        except NoData as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result.to_json(), indent=2, default=_json_default) if args.json else format_text(result))
    return 0


def cmd_survival(args: argparse.Namespace) -> int:
    from analytics.analyses.survival import analyse, format_text

    return _print_analysis(args, analyse, format_text, by=args.by, adjust=args.adjust, strata=args.strata)


def _days(text: str) -> list[int]:
    try:
        days = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of days: {text!r}") from None
    if not days or min(days) < 1:
        raise argparse.ArgumentTypeError("landmark days must be positive whole numbers")
    return days


def cmd_engagement(args: argparse.Namespace) -> int:
    from analytics.analyses.engagement import analyse_engagement, format_text

    return _print_analysis(args, analyse_engagement, format_text, adjust=args.adjust, landmarks=args.landmark)


def cmd_report(args: argparse.Namespace) -> int:
    from analytics.publish.exports import TooFew
    from analytics.analyses.kpis import Period
    from analytics.publish.report import write_report

    if args.date_from > args.date_to:
        print(f"error: --from {args.date_from} is after --to {args.date_to}", file=sys.stderr)
        return 2
    settings = OutcomeSettings(inactivity_days=args.inactivity_days)
    filters = Filters(programs=tuple(args.program or ()), sites=tuple(args.site or ()))
    with Store.open(args.db) as store:  # writable: the report is recorded in the audit log
        try:
            data = write_report(store, Period(args.date_from, args.date_to), args.out, filters,
                                threshold=args.threshold, settings=settings, progress=_say)
        except TooFew as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"wrote {args.out} ({len(data) / 1024:,.0f} KB)")
    return 0


def _password(args: argparse.Namespace) -> str:
    """From standard input (--password-stdin, for scripts) or asked twice; never an argument."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from analytics.access import users

    with Store.open(args.db) as store:
        if args.action == "add":
            users.add_user(store, args.name, args.role, _password(args))
            print(f"added {args.name} ({args.role})")
        elif args.action == "list":
            table = users.list_users(store)
            print(table.to_string(index=False) if not table.empty else "no users yet")
        elif args.action == "disable":
            users.disable_user(store, args.name)
            print(f"disabled {args.name}")
        elif args.action == "set-role":
            users.set_role(store, args.name, args.role)
            print(f"{args.name} is now {args.role}")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def add_filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--program", action="append", metavar="P", help="only this program (repeatable)")
    p.add_argument("--site", action="append", metavar="S", help="only this site (repeatable)")
    p.add_argument("--enrolled-from", type=_date, metavar="DATE", help="enrolled on or after DATE")
    p.add_argument("--enrolled-to", type=_date, metavar="DATE", help="enrolled on or before DATE")
    p.add_argument("--cutoff", type=_date, metavar="DATE",
                   help="the day the data runs to (default: the latest date in the store)")
    p.add_argument("--inactivity-days", type=int, default=30, metavar="N",
                   help="days without engagement after which a participant has left (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


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

    p = with_db(sub.add_parser("survival", help="Kaplan-Meier, log-rank and Cox for sobriety or retention"))
    p.add_argument("--outcome", required=True, choices=OUTCOMES)
    p.add_argument("--by", choices=GROUP_COLUMNS, help="compare groups of this column")
    p.add_argument("--adjust", type=_columns, default=[], metavar="COL,COL",
                   help="Cox covariates besides --by (" + ", ".join(GROUP_COLUMNS) + ")")
    p.add_argument("--strata", choices=GROUP_COLUMNS, help="stratify the log-rank test by this column")
    add_filter_options(p)
    p.set_defaults(func=cmd_survival)

    p = with_db(sub.add_parser("engagement", help="does engagement go with staying (and staying sober)? "
                               "time-varying, landmark, GEE and the naive estimate"))
    p.add_argument("--outcome", required=True, choices=OUTCOMES)
    p.add_argument("--landmark", type=_days, default=[30, 60, 90], metavar="DAYS",
                   help="landmark days, comma-separated (default 30,60,90)")
    p.add_argument("--adjust", type=_columns, default=["program"], metavar="COL,COL",
                   help="adjust for these columns (default program)")
    add_filter_options(p)
    p.set_defaults(func=cmd_engagement)

    p = with_db(sub.add_parser("report", help="the outcome report for funders as a PDF (small numbers suppressed)"))
    p.add_argument("--from", dest="date_from", required=True, type=_date, metavar="DATE",
                   help="first day of the reporting period")
    p.add_argument("--to", dest="date_to", required=True, type=_date, metavar="DATE",
                   help="last day of the reporting period")
    p.add_argument("--program", action="append", metavar="P", help="only this program (repeatable)")
    p.add_argument("--site", action="append", metavar="S", help="only this site (repeatable)")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="where to write the PDF")
    p.add_argument("--threshold", type=int, default=11, metavar="N",
                   help="counts from 1 to N-1 are suppressed (default 11; lower values are refused)")
    p.add_argument("--inactivity-days", type=int, default=30, metavar="N",
                   help="days without engagement after which a participant has left (default 30)")
    p.set_defaults(func=cmd_report)

    from analytics.access.roles import ROLES

    users = sub.add_parser("users", help="dashboard accounts: add, list, disable, set-role")
    actions = users.add_subparsers(dest="action", required=True)
    p = with_db(actions.add_parser("add", help="add an account (password asked twice, or --password-stdin)"))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = with_db(actions.add_parser("list", help="accounts, roles, last sign-in, lock-outs"))
    p = with_db(actions.add_parser("disable", help="refuse this account's sign-ins from now on"))
    p.add_argument("name")
    p = with_db(actions.add_parser("set-role", help="change an account's role"))
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    users.set_defaults(func=cmd_users)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
