"""Staff accounts from the command line, through the gateway's RPC.

    huifang-users add USERNAME --role R [--role R ...] [--estate E ...] [--name NAME]
                  [--department D] [--password-stdin]
    huifang-users list
    huifang-users disable USERNAME | enable USERNAME
    huifang-users reset-password USERNAME [--password-stdin]
    huifang-users set-roles USERNAME R [R ...] [--department D]
    huifang-users set-estates USERNAME [E ...]     (none: every estate, group-wide roles only)
    huifang-users set-department USERNAME [D]      (a department role's: 工程部 …; none: clear)

A ``department`` (责任部门) user needs their department, one the estates' complaint
routing names (intake's policy): they see and act on that department's work only.

A password is asked twice on the terminal, or read as one line from standard input
with --password-stdin (for scripts); never from the command line, where other users
and the shell history would see it. The running gateway does the work (its store may
be the embedded one inside it). Disabling a user, a new password or other roles or
estates end every login made before.

Exit status: 0 done, 1 refused (invalid input, unknown user), 2 usage, 3 the gateway
or the broker cannot be reached. ``HUIFANG_CONFIG`` or ``--config`` names the nameko
config (config.yaml).
"""
import argparse
import getpass
import json
import sys
import warnings
from collections.abc import Callable

# nameko imports eventlet, which announces its deprecation: nothing an operator can act on
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import load_config
from shared.schemas.vocabulary import GROUP_WIDE_ROLES, USER_ROLES

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
PAGE_SIZE = 500


class Refused(Exception):
    """What to tell the operator, and the exit status."""

    def __init__(self, message: str, status: int = EXIT_REFUSED):
        super().__init__(message)
        self.status = status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        payload = args.prepare(args)     # prompts first: no broker connection waits on a person
        config = load_config(args.config)
        with ClusterRpcProxy(config, timeout=args.timeout) as rpc:
            return args.run(rpc.gateway, args, payload)
    except Refused as refusal:
        print(f"huifang-users: {refusal}", file=sys.stderr)
        return refusal.status
    except (KeyboardInterrupt, EOFError):      # Ctrl-C or Ctrl-D at the password prompt
        print("\nhuifang-users: cancelled", file=sys.stderr)
        return EXIT_USAGE
    except RemoteError as error:
        print(f"huifang-users: {_explain(error, getattr(args, 'username', None))}",
              file=sys.stderr)
        return EXIT_REFUSED
    except (UnknownService, RpcTimeout):
        print("huifang-users: the gateway is not running (or not answering); "
              "start it first (make run)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (OperationalError, OSError) as error:
        print(f"huifang-users: cannot reach RabbitMQ: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huifang-users", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for the gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", dest="roles", action="append", required=True, choices=USER_ROLES,
                     help="repeatable")
    add.add_argument("--estate", dest="estates", action="append", default=[],
                     help="repeatable; none: every estate (group-wide roles only)")
    add.add_argument("--name", dest="display_name", default=None, help="the name shown")
    _department_option(add)
    _password_option(add)
    add.set_defaults(run=_add, prepare=lambda args: {
        "username": args.username, "password": _password(args), "roles": args.roles,
        "estates": args.estates, "display_name": args.display_name,
        "department": args.department})

    listing = sub.add_parser("list", help="every user, by username")
    listing.set_defaults(run=_list, prepare=lambda args: None)

    for command, disabled in (("disable", True), ("enable", False)):
        toggle = sub.add_parser(command, help=f"{command} a user's logins")
        toggle.add_argument("username")
        toggle.set_defaults(run=_update, prepare=lambda args, value=disabled: {"disabled": value})

    reset = sub.add_parser("reset-password", help="give a user a new password")
    reset.add_argument("username")
    _password_option(reset)
    reset.set_defaults(run=_update, prepare=lambda args: {"password": _password(args)})

    roles = sub.add_parser("set-roles", help="replace a user's roles")
    roles.add_argument("username")
    roles.add_argument("roles", nargs="+", choices=USER_ROLES)
    _department_option(roles)
    roles.set_defaults(run=_update, prepare=lambda args: {
        "roles": args.roles, **({"department": args.department} if args.department else {})})

    estates = sub.add_parser("set-estates", help="replace a user's estates")
    estates.add_argument("username")
    estates.add_argument("estates", nargs="*")
    estates.set_defaults(run=_update, prepare=lambda args: {"estates": args.estates})

    department = sub.add_parser("set-department", help="set or clear a user's department")
    department.add_argument("username")
    department.add_argument("department", nargs="?", default=None)
    department.set_defaults(run=_update,
                            prepare=lambda args: {"department": args.department or None})
    return parser


def _department_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--department", default=None,
                        help="the department role's department (责任部门), e.g. 工程部")


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password as one line from standard input")


# the commands ------------------------------------------------------------------------

def _add(gateway, args, data: dict) -> int:
    user = gateway.create_user(data)
    print(f"added {_describe(user)}")
    return 0


def _update(gateway, args, changes: dict) -> int:
    user = gateway.update_user(args.username, changes)
    print(f"updated {_describe(user)}")
    return 0


def _list(gateway, args, _nothing) -> int:
    users, cursor = [], None
    while True:
        page = gateway.list_users({"limit": PAGE_SIZE, "cursor": cursor})
        users += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    for user in users:
        print(_describe(user))
    print(f"{len(users)} user(s)", file=sys.stderr)
    return 0


# helpers ------------------------------------------------------------------------------

def _password(args, ask: Callable[[str], str] = getpass.getpass) -> str:
    """The new password: one line of standard input, or typed twice on the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise Refused("no terminal to ask the password on: use --password-stdin",
                          EXIT_USAGE)
        password = ask("New password: ")
        if ask("The same again: ") != password:
            raise Refused("the two passwords differ; nothing changed", EXIT_USAGE)
    if not password:
        raise Refused("an empty password; nothing changed", EXIT_USAGE)
    return password


def _describe(user: dict) -> str:
    roles = ",".join(user.get("roles") or ())
    if user.get("department"):
        roles += f" ({user['department']})"
    group_wide = set(user.get("roles") or ()) & set(GROUP_WIDE_ROLES)
    estates = ",".join(user.get("estates") or ()) or ("every estate" if group_wide else "-")
    state = "DISABLED" if user.get("disabled") else "enabled"
    name = user.get("display_name") or ""
    return f"{user['username']:<20} {state:<8} {roles:<28} {estates:<24} {name}".rstrip()


def _explain(error: RemoteError, username: str | None) -> str:
    """The gateway's refusal in an operator's words: the fields at fault, or who is unknown."""
    if error.exc_type == "InvalidInput":
        try:
            fields = json.loads(error.value)
        except (TypeError, ValueError):
            return f"refused: {error.value}"
        return "refused:\n" + "\n".join(f"  {field}: {'; '.join(map(str, messages))}"
                                        for field, messages in _flatten(fields))
    if error.exc_type == "NotFound":
        return f"no user {username!r}" if username else str(error.value)
    return f"the gateway refused: {error.exc_type}: {error.value}"


def _flatten(errors, prefix: str = ""):
    """Marshmallow's nested messages ({"roles": {"0": [...]}}) as (field path, messages)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix or "input", errors if isinstance(errors, list) else [errors]


if __name__ == "__main__":
    sys.exit(main())
