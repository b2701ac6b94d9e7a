"""Owner lists from the estates' spreadsheets: ``huifang-import-households``.

    huifang-import-households ESTATE_ID owners.xlsx [--sheet 业主名单] [--dry-run]
        [--name 阳光花园 [--company 华东物业] [--region 杭州片区]]   # a new estate: its record

Estates hand over their owner lists as Excel or CSV files; the format, the checks and
the report are ``shared/household_lists.py``'s (the console's import job reads them the
same way). Nothing is sent unless every line is right; the households then go
``SEND_CHUNK`` at a time, each call stored whole or not at all, with the progress shown as
each is stored; at the end the report says what was imported and which lines were not
(and why). Re-importing a list updates the households in it: a list cut short is
imported by running the command again.
"""
import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from shared.household_lists import SheetError, describe, prepare, send_in_chunks

# the command ------------------------------------------------------------------------------

def main(argv: list[str] | None = None, out: TextIO = sys.stdout,
         config: dict | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="huifang-import-households",
        description="Import an estate's owner list (.xlsx or .csv) into intake.")
    parser.add_argument("estate_id")
    parser.add_argument("file")
    parser.add_argument("--sheet", help="worksheet name (default: the first)")
    parser.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    parser.add_argument("--name", help="the estate's name, e.g. 阳光花园: needed for an estate "
                                       "intake does not know yet (it is registered with it)")
    parser.add_argument("--company", help="a new estate's company, e.g. 华东物业")
    parser.add_argument("--region", help="a new estate's region, e.g. 杭州片区")
    parser.add_argument("--config", help="config file (default: HUIFANG_CONFIG or config.yaml)")
    args = parser.parse_args(argv)
    try:
        rows, origins, errors = prepare(args.file, args.sheet)
    except (SheetError, OSError) as exc:
        print(f"cannot import: {exc}", file=out)
        return 2
    if errors:
        print(f"{args.file}: nothing imported, fix these lines first:", file=out)
        print("\n".join(describe(errors)), file=out)
        return 2
    contacts = sum(len(row["contacts"]) for row in rows)
    if args.dry_run:
        print(f"{args.file}: {len(rows)} households, {contacts} contacts, all valid "
              "(dry run: nothing sent)", file=out)
        return 0
    with _connect(config, args.config, _new_estate(args)) as call:
        report = send_in_chunks(call, args.estate_id, rows, origins, out)
    return print_report(args.file, args.estate_id, rows, report, out)


def print_report(file: str, estate_id: str, rows: list[dict], report: dict, out: TextIO) -> int:
    """The end of the command: what was imported, what was not; 0 if all of it was."""
    stored = report["imported"] + report["updated"]
    if report["refused"] and not stored and not report["failed"]:
        print(f"{file}: nothing imported, intake refused:", file=out)
        print("\n".join(describe(report["refused"])), file=out)
        return 2
    print(f"{file}: {report['imported']} households imported, {report['updated']} updated "
          f"({report['contacts']} contacts) into estate {estate_id}", file=out)
    if not report["refused"] and not report["failed"]:
        return 0
    print(f"{len(rows) - stored} households NOT imported; fix these and run the command "
          "again (households already imported are updated, not doubled):", file=out)
    if report["refused"]:
        print("\n".join(describe(report["refused"])), file=out)
    for first, last, why in report["failed"]:
        print(f"lines {first}-{last}: not stored: {why}", file=out)
    return 2


def _new_estate(args: argparse.Namespace) -> dict | None:
    """The estate's record as the command line gives it (``import_households``' ``estate``),
    or None when it gives none."""
    given = {field: getattr(args, field) for field in ("name", "company", "region")
             if getattr(args, field) is not None}
    return given or None


@contextmanager
def _connect(config: dict | None = None, config_path: str | None = None,
             estate: dict | None = None) -> Iterator[Callable[[str, list], dict]]:
    """``call(estate_id, rows)``: intake's ``import_households`` (``estate``: a new estate's
    record), a refusal as ``{"errors"}``."""
    import json

    from nameko.exceptions import RemoteError
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.config import load_config

    config = config or load_config(config_path)
    with ClusterRpcProxy(config, timeout=300) as rpc:
        def call(estate_id: str, rows: list) -> dict:
            try:
                return rpc.intake.import_households(estate_id, rows, estate=estate)
            except RemoteError as exc:
                if exc.exc_type != "InvalidInput":
                    raise
                return {"errors": json.loads(exc.value)}
        yield call


if __name__ == "__main__":
    sys.exit(main())
