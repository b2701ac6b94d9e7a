"""Staff's command line for survey reports, through survey's public RPC.

    huifang-survey export <round id> [--estate E] [-o report.xlsx]
    huifang-survey check <round id> [--repair]

``export`` writes the notice-board workbook (``export_report``) to a file;
``check`` recounts a round from its raw responses and compares (or repairs) the
kept statistics. ``HUIFANG_CONFIG`` or ``--config`` names the nameko config.
"""
import base64
import sys
from pathlib import Path

from shared.cli import call_service, command_parser, report_check


def main(argv=None):
    parser, commands = command_parser("huifang-survey", "survey", __doc__, timeout=120)
    export = commands.add_parser("export", help="write a round's report as an .xlsx workbook")
    export.add_argument("round_id")
    export.add_argument("--estate", default=None, help="one estate only (default: all)")
    export.add_argument("-o", "--output", default=None,
                        help="file to write (default: <round id>[-<estate>].xlsx)")
    check = commands.add_parser("check", help="recount a round's statistics from its responses")
    check.add_argument("round_id")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    args = parser.parse_args(argv)
    return call_service("survey", args, _export if args.command == "export" else _check)


def _export(survey, args):
    content = base64.b64decode(survey.export_report(args.round_id, args.estate))
    name = args.round_id + (f"-{args.estate}" if args.estate else "") + ".xlsx"
    path = Path(args.output or name)
    path.write_bytes(content)
    print(f"wrote {path} ({len(content):,} bytes)")
    return 0


def _check(survey, args):
    return report_check(survey.check_statistics(args.round_id, {"repair": args.repair}),
                        args.round_id)


if __name__ == "__main__":
    sys.exit(main())
