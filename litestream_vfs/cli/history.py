"""`history` and `validate`: what a replica holds, and whether every file of it is sound."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from .args import Commands, add_format
from .output import age_text, write_json, write_rows


def register(commands: Commands) -> None:
    history = commands.add("history", "every restorable state: TXID, time, level, size", _run_history)
    history.add_argument("replica")
    add_format(history, ("table", "json", "csv"))

    check = commands.add("validate", "verify every file's checksum and the latest state's plan", _run_validate)
    check.add_argument("replica")


def _run_history(args: argparse.Namespace) -> int:
    from ..connect import open_replica
    from ..timeparse import format_time, format_txid

    replica = open_replica(args.replica)
    entries = replica.history()
    for obj, problem in replica.damage.found():  # their states are left out of the list
        print(f"warning: {obj} is damaged and left out ({problem.problem})", file=sys.stderr)
    if args.format == "json":
        write_json([{"txid": format_txid(e.txid), "time": format_time(e.timestamp), "level": e.level,
                     "size": e.file_size, "db_size": e.db_size} for e in entries])
        return 0
    now = datetime.now(timezone.utc)
    columns = ["txid", "time (UTC)", "local time", "age", "level", "file size", "db size"]
    rows = [(format_txid(e.txid), format_time(e.timestamp),
             e.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"), age_text(now - e.timestamp),
             e.level, e.file_size, e.db_size) for e in entries]
    write_rows(columns, rows, args.format)
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from ..connect import open_replica
    from ..validate import validate

    report = validate(open_replica(args.replica), progress=lambda line: print(line, flush=True))
    print(report.summary())
    return 0 if report.ok else 1
