"""Commands that print an analysis: survival, engagement."""

from __future__ import annotations

import argparse

from analytics.cli.common import add_filter_options, columns, dumps, error, filters, with_db
from analytics.outcomes.columns import DEFAULT_OUTCOME, GROUP_COLUMNS, OUTCOMES


def print_analysis(args: argparse.Namespace, analyse, format_text, **kwargs) -> int:
    """Run one analysis on a read-only store; JSON or text; exit 1 when the filters leave nobody."""
    from analytics.analyses.survival import NoData
    from analytics.outcomes.definitions import OutcomeSettings
    from analytics.store.connection import Store

    settings = OutcomeSettings(cutoff=args.cutoff, inactivity_days=args.inactivity_days)
    with Store.open(args.db, read_only=True) as store:
        try:
            result = analyse(store, args.outcome, settings=settings, filters=filters(args), **kwargs)
        except NoData as exc:
            error(str(exc))
            return 1
    print(dumps(result.to_json()) if args.json else format_text(result))
    return 0


def cmd_survival(args: argparse.Namespace) -> int:
    from analytics.analyses.survival import analyse, format_text

    return print_analysis(args, analyse, format_text, by=args.by, adjust=args.adjust, strata=args.strata,
                          incidence=False)  # neither the JSON nor the text shows it


def cmd_engagement(args: argparse.Namespace) -> int:
    from analytics.analyses.engagement import analyse_engagement, format_text

    return print_analysis(args, analyse_engagement, format_text, adjust=args.adjust, landmarks=args.landmark)


def _days(text: str) -> list[int]:
    try:
        days = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of days: {text!r}") from None
    if not days or min(days) < 1:
        raise argparse.ArgumentTypeError("landmark days must be positive whole numbers")
    return days


def add_outcome_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outcome", choices=OUTCOMES, default=DEFAULT_OUTCOME,
                   help=f"the outcome to analyse (default {DEFAULT_OUTCOME})")


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser("survival", help="Kaplan-Meier, log-rank and Cox for sobriety or retention"))
    add_outcome_option(p)
    p.add_argument("--by", choices=GROUP_COLUMNS, help="compare groups of this column")
    p.add_argument("--adjust", type=columns, default=[], metavar="COL,COL",
                   help="Cox covariates besides --by (" + ", ".join(GROUP_COLUMNS) + ")")
    p.add_argument("--strata", choices=GROUP_COLUMNS, help="stratify the log-rank test by this column")
    add_filter_options(p)
    p.set_defaults(func=cmd_survival)

    p = with_db(sub.add_parser("engagement", help="does engagement go with staying (and staying sober)? "
                               "time-varying, landmark, GEE and the naive estimate"))
    add_outcome_option(p)
    p.add_argument("--landmark", type=_days, default=[30, 60, 90], metavar="DAYS",
                   help="landmark days, comma-separated (default 30,60,90)")
    p.add_argument("--adjust", type=columns, default=["program"], metavar="COL,COL",
                   help="adjust for these columns (default program)")
    add_filter_options(p)
    p.set_defaults(func=cmd_engagement)
