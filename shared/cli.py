"""What the staff command lines (``huifang-intake``, ``huifang-revisit``,
``huifang-survey``) share: one nameko config, one service called over its public RPC, a
refusal said in one line, and the report of a statistics check.

    parser, commands = command_parser("huifang-revisit", "revisit", __doc__, timeout=600)
    check = commands.add_parser("check", help="recount the counters")
    check.add_argument("--repair", action="store_true")
    args = parser.parse_args(argv)
    return call_service("revisit", args, lambda revisit, args: report_check(
        revisit.check_statistics({"repair": args.repair}), "revisit statistics"))
"""
import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from shared.config import load_config


def command_parser(prog: str, service: str, doc: str | None, timeout: float
                   ) -> tuple[argparse.ArgumentParser, Any]:
    """The command's parser with ``--config`` and ``--timeout``, and its sub-commands."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    parser.add_argument("--timeout", type=float, default=timeout,
                        help=f"seconds to wait for {service}")
    return parser, parser.add_subparsers(dest="command", required=True)


def call_service(service: str, args: argparse.Namespace,
                 handle: Callable[[Any, argparse.Namespace], int]) -> int:
    """``handle(proxy, args)``'s exit status with a proxy to ``service``; 2 when the service
    refuses (the refusal printed in one line, no traceback)."""
    config = load_config(args.config)
    try:
        with ServiceRpcProxy(service, config, timeout=args.timeout) as proxy:
            return handle(proxy, args)
    except RemoteError as error:
        print(f"{service} refused: {error.exc_type}: {error.value}", file=sys.stderr)
        return 2


def report_check(result: dict, label: str, problems: Iterable[str] = ()) -> int:
    """A ``check_statistics`` answer: each difference as a JSON line on stdout, the verdict
    on stderr; 0 when consistent or repaired, else 1 (a script can test it)."""
    for difference in result["differences"]:
        print(json.dumps(difference, ensure_ascii=False))
    found = [f"{len(result['differences'])} difference(s)", *problems]
    verdict = "consistent" if result["consistent"] else (
        "repaired" if result["repaired"] else "; ".join(found))
    print(f"{label}: {verdict}", file=sys.stderr)
    return 0 if result["consistent"] or result["repaired"] else 1
