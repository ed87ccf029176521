"""``remotesign operator``: the accounts that sign in to the operator console (``/console``).

Operators are people who run the service, not relying parties: an account is made here, on the
server, and its password is read from the terminal (asked twice) or from one line of standard
input (``--password-stdin``, for scripts); ``--generate`` makes a random one and prints it once.
Also usable without the main parser's wiring: ``python -m remotesign.cli.operators ACTION ...``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys

EPILOG = """The console is at <public URL>/console. Wrong passwords lock an account for longer and longer
(REMOTESIGN_PASSWORD_MAX_ATTEMPTS, REMOTESIGN_PASSWORD_LOCK_SECONDS, as for end users); 'unlock' or a
new password lifts the lock. A new password or 'disable' also ends the operator's console sessions."""


def _services():  # type: ignore[no-untyped-def]
    """The instance's services (found as every other command finds it) and its operators."""
    from remotesign.cli.home import open_services
    from remotesign.core.operators import OperatorService

    svc = open_services()
    return svc, OperatorService.for_services(svc)


def _password(args: argparse.Namespace) -> str:
    if getattr(args, "generate", False):
        return secrets.token_urlsafe(18)
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise SystemExit("error: no password on standard input")
        return line
    first = getpass.getpass("new operator password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("error: the two passwords differ")
    return first


def _run(args: argparse.Namespace, work) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.errors import CoreError

    svc, ops = _services()
    try:
        return int(work(ops) or 0)
    except CoreError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        svc.close()


def _actor() -> str:
    return f"cli:{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'unknown'}"


def cmd_create(args: argparse.Namespace) -> int:
    password = _password(args)

    def work(ops) -> int:  # type: ignore[no-untyped-def]
        info = ops.create(args.name, password, actor=_actor())
        print(f"operator {info.username} created; sign in at the console (/console)")
        if args.generate:
            print(f"password: {password}")
        return 0

    return _run(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    def work(ops) -> int:  # type: ignore[no-untyped-def]
        found = ops.list()
        if args.json:
            print(json.dumps([{"username": o.username, "enabled": o.enabled, "locked": o.locked(),
                               "locked_until": o.locked_until.isoformat() if o.locked_until else None,
                               "locked_permanently": o.locked_permanently, "created_at": o.created_at.isoformat(),
                               "last_login_at": o.last_login_at.isoformat() if o.last_login_at else None}
                              for o in found], indent=2))
            return 0
        for o in found:
            state = "disabled" if not o.enabled else "locked" if o.locked() else "enabled"
            last = f"{o.last_login_at:%Y-%m-%d %H:%M}" if o.last_login_at else "never"
            print(f"{o.username:<30} {state:<9} last sign-in {last}")
        return 0

    return _run(args, work)


def cmd_password(args: argparse.Namespace) -> int:
    password = _password(args)

    def work(ops) -> int:  # type: ignore[no-untyped-def]
        ops.set_password(args.name, password, actor=_actor())
        print(f"operator {args.name}: new password set, locks lifted, sessions ended")
        if args.generate:
            print(f"password: {password}")
        return 0

    return _run(args, work)


def cmd_unlock(args: argparse.Namespace) -> int:
    return _run(args, lambda ops: print(f"operator {ops.unlock(args.name, actor=_actor()).username} unlocked"))


def cmd_enable(args: argparse.Namespace, enabled: bool) -> int:
    def work(ops) -> int:  # type: ignore[no-untyped-def]
        ops.set_enabled(args.name, enabled, actor=_actor())
        print(f"operator {args.name} {'enabled' if enabled else 'disabled'}")
        return 0

    return _run(args, work)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    operator = sub.add_parser("operator", help="operator console accounts", epilog=EPILOG,
                              description="Accounts of the people who run the service, for the operator console "
                                          "at /console (not OAuth clients, not end users).")
    osub = operator.add_subparsers(dest="operator_command", required=True, metavar="ACTION")

    def secret_options(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--password-stdin", action="store_true",
                           help="read the password from one line of standard input")
        group.add_argument("--generate", action="store_true", help="make a random password and print it once")

    p = osub.add_parser("create", help="create an operator (asks for the password)", epilog=EPILOG)
    p.add_argument("name", help="the operator's sign-in name (letters, digits, . _ @ -)")
    secret_options(p)
    p.set_defaults(func=cmd_create)
    p = osub.add_parser("list", help="list operators with their state")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)
    p = osub.add_parser("password", help="set a new password (lifts locks, ends sessions)", epilog=EPILOG)
    p.add_argument("name")
    secret_options(p)
    p.set_defaults(func=cmd_password)
    p = osub.add_parser("unlock", help="lift a lock after wrong passwords")
    p.add_argument("name")
    p.set_defaults(func=cmd_unlock)
    p = osub.add_parser("disable", help="disable an operator (ends their sessions)")
    p.add_argument("name")
    p.set_defaults(func=lambda a: cmd_enable(a, False))
    p = osub.add_parser("enable", help="enable a disabled operator again")
    p.add_argument("name")
    p.set_defaults(func=lambda a: cmd_enable(a, True))


def main(argv: list[str] | None = None) -> int:
    """``python -m remotesign.cli.operators ACTION ...``: the same commands without the main parser."""
    from remotesign.instance import InstanceError
    from remotesign.storage.private import private_umask

    parser = argparse.ArgumentParser(prog="remotesign", description="Operator console accounts.")
    add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv if argv is not None else ["operator", *sys.argv[1:]])
    previous = private_umask()
    try:
        return int(args.func(args) or 0)
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        os.umask(previous)


if __name__ == "__main__":
    sys.exit(main())
