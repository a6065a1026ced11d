"""Dashboard accounts: users add, list, disable, set-role."""

from __future__ import annotations

import argparse
import sys

from analytics.access.roles import ROLES
from analytics.cli.common import with_db


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
    from analytics.store.connection import Store

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


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="dashboard accounts: add, list, disable, set-role")
    actions = users.add_subparsers(dest="action", required=True)
    p = with_db(actions.add_parser("add", help="add an account (password asked twice, or --password-stdin)"))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    with_db(actions.add_parser("list", help="accounts, roles, last sign-in, lock-outs"))
    p = with_db(actions.add_parser("disable", help="refuse this account's sign-ins from now on"))
    p.add_argument("name")
    p = with_db(actions.add_parser("set-role", help="change an account's role"))
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    users.set_defaults(func=cmd_users)
