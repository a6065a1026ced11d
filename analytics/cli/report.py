"""The outcome report command: a PDF for funders."""

from __future__ import annotations

import argparse

from analytics.cli.common import add_inactivity_days, date, error, say, setting_help, with_db
from analytics.settings import THRESHOLD


def cmd_report(args: argparse.Namespace) -> int:
    from analytics.outcomes.period import Period
    from analytics.outcomes.definitions import OutcomeSettings
    from analytics.outcomes.filters import Filters
    from analytics.publish.exports import TooFew
    from analytics.publish.report import write_report
    from analytics.store.connection import Store

    if args.date_from > args.date_to:
        error(f"--from {args.date_from} is after --to {args.date_to}")
        return 2
    settings = OutcomeSettings(inactivity_days=args.inactivity_days)
    filters = Filters(programs=tuple(args.program or ()), sites=tuple(args.site or ()))
    with Store.open(args.db) as store:  # writable: the report is recorded in the audit log
        try:
            data = write_report(store, Period(args.date_from, args.date_to), args.out, filters,
                                threshold=args.threshold, settings=settings, progress=say,
                                organisation=args.organisation or "")
        except TooFew as exc:
            error(str(exc))
            return 1
    print(f"wrote {args.out} ({len(data) / 1024:,.0f} KB)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser("report", help="the outcome report for funders as a PDF (small numbers suppressed)"))
    p.add_argument("--from", dest="date_from", required=True, type=date, metavar="DATE",
                   help="first day of the reporting period")
    p.add_argument("--to", dest="date_to", required=True, type=date, metavar="DATE",
                   help="last day of the reporting period")
    p.add_argument("--program", action="append", metavar="P", help="only this program (repeatable)")
    p.add_argument("--site", action="append", metavar="S", help="only this site (repeatable)")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="where to write the PDF")
    p.add_argument("--threshold", type=int, default=THRESHOLD.default, metavar="N",
                   help=setting_help(THRESHOLD, f"counts from 1 to N-1 are suppressed; values below "
                                                f"{THRESHOLD.minimum:g} are refused"))
    add_inactivity_days(p)
    p.add_argument("--organisation", metavar="NAME", default="",
                   help="the organisation named on the cover (with the period and headline numbers)")
    p.set_defaults(func=cmd_report)
