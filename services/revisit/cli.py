"""Staff's command line for revisit's statistics, through revisit's public RPC.

    huifang-revisit check [--repair]

``check`` recounts the statistics' counters (kept per estate × month) from the raw
revisits and work orders and compares them; ``--repair`` replaces the kept counters by
the recount (run it while nothing writes revisits). ``HUIFANG_CONFIG`` or ``--config``
names the nameko config.
"""
import argparse
import json
import sys

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from shared.config import load_config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="huifang-revisit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for revisit")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="recount the statistics' counters from the revisits")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        with ServiceRpcProxy("revisit", config, timeout=args.timeout) as revisit:
            return _check(revisit, args)
    except RemoteError as error:
        print(f"revisit refused: {error.exc_type}: {error.value}", file=sys.stderr)
        return 2


def _check(revisit, args):
    result = revisit.check_statistics({"repair": args.repair})
    for difference in result["differences"]:
        print(json.dumps(difference, ensure_ascii=False))
    verdict = "consistent" if result["consistent"] else (
        "repaired" if result["repaired"] else f"{len(result['differences'])} difference(s)")
    print(f"revisit statistics: {verdict}", file=sys.stderr)
    return 0 if result["consistent"] or result["repaired"] else 1


if __name__ == "__main__":
    sys.exit(main())
