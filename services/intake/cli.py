"""Staff's command line for intake's complaint statistics, through intake's public RPC.

    huifang-intake check [--repair]

``check`` recounts the statistics' counters (kept per estate × month of receipt) from
the raw complaints and compares them, and counts the complaints stored before the
counters (``unfiled``); ``--repair`` files those and replaces the kept counters by the
recount (run it while nothing writes complaints: once after upgrading a store filled
before the counters). ``HUIFANG_CONFIG`` or ``--config`` names the nameko config.
"""
import sys

from shared.cli import call_service, command_parser, report_check


def main(argv=None):
    parser, commands = command_parser("huifang-intake", "intake", __doc__, timeout=600)
    check = commands.add_parser("check", help="recount the statistics' counters from the complaints")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    return call_service("intake", parser.parse_args(argv), _check)


def _check(intake, args):
    result = intake.check_statistics({"repair": args.repair})
    unfiled = [f"{result['unfiled']} complaint(s) stored before the counters"] \
        if result["unfiled"] else []
    return report_check(result, "complaint statistics", unfiled)


if __name__ == "__main__":
    sys.exit(main())
