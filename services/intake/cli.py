"""Staff's command line for intake's complaint statistics, through intake's public RPC.

    huifang-intake check [--repair]

``check`` recounts the statistics' counters (kept per estate × month of receipt) from
the raw complaints and compares them, and counts the complaints stored before the
counters (``unfiled``); ``--repair`` files those and replaces the kept counters by the
recount (run it while nothing writes complaints: once after upgrading a store filled
before the counters). ``HUIFANG_CONFIG`` or ``--config`` names the nameko config.
"""
import argparse
import json
import sys

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from shared.config import load_config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="huifang-intake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for intake")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="recount the statistics' counters from the complaints")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        with ServiceRpcProxy("intake", config, timeout=args.timeout) as intake:
            return _check(intake, args)
    except RemoteError as error:
        print(f"intake refused: {error.exc_type}: {error.value}", file=sys.stderr)
        return 2


def _check(intake, args):
    result = intake.check_statistics({"repair": args.repair})
    for difference in result["differences"]:
        print(json.dumps(difference, ensure_ascii=False))
    problems = [f"{len(result['differences'])} difference(s)"] + (
        [f"{result['unfiled']} complaint(s) stored before the counters"]
        if result["unfiled"] else [])
    verdict = "consistent" if result["consistent"] else (
        "repaired" if result["repaired"] else "; ".join(problems))
    print(f"complaint statistics: {verdict}", file=sys.stderr)
    return 0 if result["consistent"] or result["repaired"] else 1


if __name__ == "__main__":
    sys.exit(main())
