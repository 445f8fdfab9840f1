"""`bisect`: the first state whose answer to a query differs from the answer at the start."""

from __future__ import annotations

import argparse
from typing import Any

from .args import Commands, add_format, add_range_options
from .output import write_json, write_rows


def register(commands: Commands) -> None:
    bisect = commands.add("bisect", "the first state whose result for SQL differs from the result at --from "
                                    "(binary search: assumes the result changes once)", _run_bisect)
    bisect.add_argument("replica")
    bisect.add_argument("sql")
    add_range_options(bisect)
    add_format(bisect, ("table", "json"))


def _run_bisect(args: argparse.Namespace) -> int:
    from ..change_point import bisect
    from ..timeparse import format_time, format_txid

    found = bisect(args.replica, args.sql, since=args.from_, until=args.to)
    if args.format == "json":
        write_json(found.to_json())
        return 0
    if found.txid is None or found.time is None or found.after is None:
        print(f"no change ({found.evaluated} states queried); the result throughout:")
        _print_rows(found.before)
        return 0
    print(f"first change: TXID {format_txid(found.txid)} ({format_time(found.time)}), "
          f"{found.evaluated} states queried")
    print("before:")
    _print_rows(found.before)
    print("after:")
    _print_rows(found.after)
    return 0


def _print_rows(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(no rows)")
        return
    write_rows(list(rows[0]), (tuple(row.values()) for row in rows), "table")
