"""`log` and `diff`: what changed from one state to the next."""

from __future__ import annotations

import argparse

from .args import Commands, add_format
from .output import json_row, text_row, write_json, write_rows


def register(commands: Commands) -> None:
    log = commands.add("log", "per state: the tables and indexes whose pages changed", _run_log)
    log.add_argument("replica")
    log.add_argument("--table", help="only states that changed this table or index")
    add_format(log, ("table", "json", "csv"))

    diff = commands.add("diff", "rows of a table added, removed and changed between two states", _run_diff)
    diff.add_argument("replica")
    diff.add_argument("table")
    diff.add_argument("--from", dest="from_", required=True, help="earlier state: TXID (16 hex) or time")
    diff.add_argument("--to", required=True, help="later state: TXID (16 hex) or time")
    add_format(diff, ("table", "csv", "json"))


def _run_log(args: argparse.Namespace) -> int:
    from ..changes import change_log
    from ..timeparse import format_time, format_txid

    entries = change_log(args.replica, table=args.table)
    if args.format == "json":
        write_json([{"txid": format_txid(e.txid), "time": format_time(e.time), "tables": dict(e.tables)}
                    for e in entries])
        return 0
    columns = ["txid", "time (UTC)", "level", "covers", "tables (pages changed)"]
    write_rows(columns, ((format_txid(e.txid), format_time(e.time), e.level,
                          f"{format_txid(e.min_txid)}..{format_txid(e.txid)}" if e.coarse else "1 transaction",
                          ", ".join(f"{name} ({pages})" for name, pages in e.tables.items()))
                         for e in entries), args.format)
    return 0


def _run_diff(args: argparse.Namespace) -> int:
    from ..rowdiff import diff

    changes = diff(args.replica, args.table, args.from_, args.to)
    if args.format == "json":
        write_json([{k: v if k == "change" else json_row(v) for k, v in row.items()} for row in changes])
        return 0
    write_rows(["change", "key", "before", "after"],
               ((row["change"], text_row(row["key"]), text_row(row["before"]), text_row(row["after"]))
                for row in changes), args.format)
    return 0
