"""Staff's command line for intake's complaint statistics and estates, through intake's
public RPC.

    huifang-intake check [--repair]
    huifang-intake migrate-estates

``check`` recounts the statistics' counters (kept per estate × month of receipt) from
the raw complaints and compares them, and counts the complaints stored before the
counters (``unfiled``); ``--repair`` files those and replaces the kept counters by the
recount (run it while nothing writes complaints: once after upgrading a store filled
before the counters). ``migrate-estates`` gives each estate known before estates were
records (only its households imported) its record, named by its id until renamed
(``update_estate``), and announces it; run it once after upgrading (estates read as such
records before it too). ``HUIFANG_CONFIG`` or ``--config`` names the nameko config.
"""
import sys

from shared.cli import call_service, command_parser, report_check


def main(argv=None):
    parser, commands = command_parser("huifang-intake", "intake", __doc__, timeout=600)
    check = commands.add_parser("check", help="recount the statistics' counters from the complaints")
    check.add_argument("--repair", action="store_true", help="replace the kept counters")
    commands.add_parser("migrate-estates", help="records for estates known only by their id")
    args = parser.parse_args(argv)
    return call_service("intake", args, _check if args.command == "check" else _migrate)


def _migrate(intake, args):
    migrated = 0
    while True:   # a batch a call, until none is left
        result = intake.migrate_estates()
        migrated += result["migrated"]
        if not result["left"] or not result["migrated"]:
            break
    print(f"estates: {migrated} migrated, {result['left']} left", file=sys.stderr)
    return 0 if not result["left"] else 1


def _check(intake, args):
    result = intake.check_statistics({"repair": args.repair})
    unfiled = [f"{result['unfiled']} complaint(s) stored before the counters"] \
        if result["unfiled"] else []
    return report_check(result, "complaint statistics", unfiled)


if __name__ == "__main__":
    sys.exit(main())
