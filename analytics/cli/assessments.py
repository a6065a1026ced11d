"""Command: `python -m analytics assessments`: recovery capital and follow-up compliance."""

from __future__ import annotations

import argparse

from analytics.cli.common import add_filter_options, dumps, error, filters, with_db


def cmd_assessments(args: argparse.Namespace) -> int:
    """Exit 0 with the result; 1 when the filters leave nobody with a baseline assessment."""
    from analytics.analyses.assessments import NoAssessments, analyse_assessments, format_text
    from analytics.outcomes.assessments import AssessmentSettings
    from analytics.store.connection import Store

    settings = AssessmentSettings(instrument=args.instrument, cutoff=args.cutoff)
    with Store.open(args.db, read_only=True) as store:
        try:
            result = analyse_assessments(store, filters(args), settings)
        except NoAssessments as exc:
            error(str(exc))
            return 1
    print(dumps(result.to_json()) if args.json else format_text(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = with_db(sub.add_parser("assessments", help="recovery capital (BARC-10): follow-up rate, change "
                               "from baseline, trajectories, engagement"))
    p.add_argument("--instrument", default="barc10", choices=("barc10",), help="assessment instrument")
    add_filter_options(p)
    p.set_defaults(func=cmd_assessments)
