"""Staff's command line for revisit's statistics, through revisit's public RPC.

    huifang-revisit check [--repair]

``check`` recounts the statistics' counters (kept per estate × month) from the raw
revisits and work orders and compares them; ``--repair`` replaces the kept counters by
the recount (run it while nothing writes revisits). ``HUIFANG_CONFIG`` or ``--config``
names the nameko config.
"""
import sys

from shared.cli import call_service, command_parser, report_check


def main(argv=None):
    parser, commands = command_parser("huifang-revisit", "revisit", __doc__, timeout=600)
    check = commands.add_parser("check", help="recount the statistics' counters from the revisits")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    return call_service("revisit", parser.parse_args(argv), _check)


def _check(revisit, args):
    return report_check(revisit.check_statistics({"repair": args.repair}), "revisit statistics")


if __name__ == "__main__":
    sys.exit(main())
