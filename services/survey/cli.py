"""Staff's command line for survey reports, through survey's public RPC.

    huifang-survey export <round id> [--estate E] [-o report.xlsx]
    huifang-survey check <round id> [--repair]

``export`` writes the notice-board workbook (``export_report``) to a file;
``check`` recounts a round from its raw responses and compares (or repairs) the
kept statistics. ``HUIFANG_CONFIG`` or ``--config`` names the nameko config.
"""
import argparse
import base64
import json
import sys
from pathlib import Path

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from shared.config import load_config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="huifang-survey", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for survey")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write a round's report as an .xlsx workbook")
    export.add_argument("round_id")
    export.add_argument("--estate", default=None, help="one estate only (default: all)")
    export.add_argument("-o", "--output", default=None,
                        help="file to write (default: <round id>[-<estate>].xlsx)")
    check = sub.add_parser("check", help="recount a round's statistics from its responses")
    check.add_argument("round_id")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        with ServiceRpcProxy("survey", config, timeout=args.timeout) as survey:
            if args.command == "export":
                return _export(survey, args)
            return _check(survey, args)
    except RemoteError as error:
        print(f"survey refused: {error.exc_type}: {error.value}", file=sys.stderr)
        return 2


def _export(survey, args):
    content = base64.b64decode(survey.export_report(args.round_id, args.estate))
    name = args.round_id + (f"-{args.estate}" if args.estate else "") + ".xlsx"
    path = Path(args.output or name)
    path.write_bytes(content)
    print(f"wrote {path} ({len(content):,} bytes)")
    return 0


def _check(survey, args):
    result = survey.check_statistics(args.round_id, {"repair": args.repair})
    for difference in result["differences"]:
        print(json.dumps(difference, ensure_ascii=False))
    verdict = "consistent" if result["consistent"] else (
        "repaired" if result["repaired"] else f"{len(result['differences'])} difference(s)")
    print(f"{args.round_id}: {verdict}", file=sys.stderr)
    return 0 if result["consistent"] or result["repaired"] else 1


if __name__ == "__main__":
    sys.exit(main())
