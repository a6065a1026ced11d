"""The outreach command: who to call this week, the model behind the ranking and its track record."""

from __future__ import annotations

import argparse

from analytics.cli.common import date, dumps, error, filters, with_db


def cmd_outreach(args: argparse.Namespace) -> int:
    from analytics.analyses.outreach import outreach, outreach_text
    from analytics.outcomes.definitions import OutcomeSettings
    from analytics.store.connection import Store

    if args.top is not None and args.top < 1:
        error("--top must be at least 1")
        return 2
    with Store.open(args.db, read_only=True) as store:
        result = outreach(store, filters(args), as_of=args.as_of,
                          outcome_settings=OutcomeSettings(inactivity_days=args.inactivity_days))
    if result.participants.empty and result.model.kind == "days_silent" and not result.backtest.cutoffs:
        error(f"nobody active on {result.as_of} for {result.filters.describe()}")
        return 1
    print(dumps(result.to_json(args.top)) if args.json else outreach_text(result, args.top))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser("outreach", help="who to call this week: each active participant's chance of "
                               "leaving in the next 28 days, the model and its track record"))
    p.add_argument("--as-of", type=date, metavar="DATE",
                   help="the reference day (default: the latest date in the store)")
    p.add_argument("--top", type=int, metavar="N", help="list only the N highest risks")
    p.add_argument("--program", action="append", metavar="P", help="only this program (repeatable)")
    p.add_argument("--site", action="append", metavar="S", help="only this site (repeatable)")
    p.add_argument("--enrolled-from", type=date, metavar="DATE", help="enrolled on or after DATE")
    p.add_argument("--enrolled-to", type=date, metavar="DATE", help="enrolled on or before DATE")
    p.add_argument("--inactivity-days", type=int, default=30, metavar="N",
                   help="days without engagement after which a participant has left (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=cmd_outreach)
