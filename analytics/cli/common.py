"""What every command shares: option parsers, the filter options, JSON output, progress."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from analytics.settings import INACTIVITY_DAYS, STORE, Setting

if TYPE_CHECKING:
    from analytics.outcomes.filters import Filters

Register = Callable[[argparse._SubParsersAction], None]


def say(message: str) -> None:
    """Progress on standard error, so standard output stays the result (or the JSON)."""
    print(f"... {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def setting_help(setting: Setting, text: str | None = None) -> str:
    """An option's help: the setting's help text (or `text`) and its declared default."""
    return f"{text or setting.help} (default {setting.shown_default()})"


def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--db", metavar="PATH",
                   help=f"store: a DuckDB file or a postgresql://user@host:5432/dbname address "
                        f"(default: ${STORE.env}, else {STORE.shown_default()})")
    return p


def add_inactivity_days(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inactivity-days", type=int, default=INACTIVITY_DAYS.default, metavar="N",
                   help=setting_help(INACTIVITY_DAYS))


def date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def filters(args: argparse.Namespace) -> Filters:
    from analytics.outcomes.filters import Filters  # here: it loads the store layer (duckdb, pandas)

    return Filters(programs=tuple(args.program or ()), sites=tuple(args.site or ()),
                   enrolled_from=getattr(args, "enrolled_from", None),
                   enrolled_to=getattr(args, "enrolled_to", None))


def add_filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--program", action="append", metavar="P", help="only this program (repeatable)")
    p.add_argument("--site", action="append", metavar="S", help="only this site (repeatable)")
    p.add_argument("--enrolled-from", type=date, metavar="DATE", help="enrolled on or after DATE")
    p.add_argument("--enrolled-to", type=date, metavar="DATE", help="enrolled on or before DATE")
    p.add_argument("--cutoff", type=date, metavar="DATE",
                   help="the day the data runs to (default: the latest date in the store)")
    add_inactivity_days(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def json_default(value: object) -> object:
    import numpy as np  # here, not at the top: `--help` and the parsing need no numpy

    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, default=json_default)
