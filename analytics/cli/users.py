"""Dashboard accounts: users add, list, disable, set-role, set-sites."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from analytics.access.roles import ROLES
from analytics.cli.common import error, with_db

if TYPE_CHECKING:
    import pandas as pd

NO_TERMINAL = ("no terminal to ask for the password: pipe it in with --password-stdin, "
               "e.g. echo \"$PASSWORD\" | python -m analytics users add NAME --role ROLE --password-stdin")
MINUTE = "%Y-%m-%d %H:%M"


def _has_terminal() -> bool:
    """True when getpass can ask: standard input is a terminal, or the process has one (/dev/tty)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return True
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def _password(args: argparse.Namespace) -> str:
    """From standard input (--password-stdin, for scripts) or asked twice; never an argument."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass(f"Password for {args.name}: ")
        again = getpass.getpass("Again: ")
    except EOFError:
        raise ValueError(NO_TERMINAL) from None
    if again != first:
        raise ValueError("the two passwords differ")
    return first


def _sites(text: str | None) -> list[str]:
    """'A,B' -> ['A', 'B']; empty: every site."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def format_users(table: pd.DataFrame) -> str:
    """The accounts for the terminal: times to the minute, blank where never (no NaT)."""
    if table.empty:
        return "no users yet"
    shown = table.copy()
    for col in shown.columns[shown.dtypes.astype(str).str.startswith("datetime")]:
        shown[col] = shown[col].dt.strftime(MINUTE).fillna("")
    return shown.to_string(index=False)


def cmd_users(args: argparse.Namespace) -> int:
    from analytics.access import users
    from analytics.store.connection import Store

    if args.action == "add" and not args.password_stdin and not _has_terminal():
        error(NO_TERMINAL)
        return 2
    with Store.open(args.db) as store:
        if args.action == "add":
            users.add_user(store, args.name, args.role, _password(args), sites=_sites(args.sites))
            print(f"added {args.name} ({args.role}{', sites ' + args.sites if args.sites else ''})")
        elif args.action == "list":
            print(format_users(users.list_users(store)))
        elif args.action == "disable":
            users.disable_user(store, args.name)
            print(f"disabled {args.name}")
        elif args.action == "set-role":
            users.set_role(store, args.name, args.role)
            print(f"{args.name} is now {args.role}")
        elif args.action == "set-sites":
            users.set_sites(store, args.name, _sites(args.sites))
            print(f"{args.name} now sees {args.sites.strip(', ') or 'every site'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="dashboard accounts: add, list, disable, set-role, set-sites")
    actions = users.add_subparsers(dest="action", required=True)
    p = with_db(actions.add_parser("add", help="add an account (password asked twice, or --password-stdin)"))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--sites", metavar="A,B", help="the only sites this account sees (default: every site)")
    with_db(actions.add_parser("list", help="accounts, roles, sites, last sign-in"))
    p = with_db(actions.add_parser("disable", help="refuse this account's sign-ins from now on"))
    p.add_argument("name")
    p = with_db(actions.add_parser("set-role", help="change an account's role"))
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p = with_db(actions.add_parser("set-sites", help="the only sites an account sees ('' for every site)"))
    p.add_argument("name")
    p.add_argument("sites", metavar="A,B")
    users.set_defaults(func=cmd_users)
