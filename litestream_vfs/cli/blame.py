"""`blame`: every version of one row across the retained history."""

from __future__ import annotations

import argparse

from .args import Commands, add_format, add_range_options
from .output import text_row, write_json, write_rows


def register(commands: Commands) -> None:
    blame = commands.add("blame", "every version of one row across the retained history", _run_blame)
    blame.add_argument("replica")
    blame.add_argument("table")
    blame.add_argument("key", help="rowid / INTEGER PRIMARY KEY value, or JSON {\"col\": value, ...} "
                                   "(a bare value for a one-column key)")
    add_range_options(blame)
    add_format(blame, ("table", "json"))


def _run_blame(args: argparse.Namespace) -> int:
    from ..row_history import blame
    from ..timeparse import format_time, format_txid

    versions = blame(args.replica, args.table, args.key, since=args.from_, until=args.to)
    if args.format == "json":
        write_json([v.to_json() for v in versions])
        return 0
    write_rows(["txid", "time (UTC)", "change", "covers", "row"],
               ((format_txid(v.txid), format_time(v.time), v.change,
                 "1 transaction" if v.since is None else f"{format_txid(v.since)}..{format_txid(v.txid)}",
                 text_row(v.row)) for v in versions), args.format)
    return 0
