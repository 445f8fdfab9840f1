"""`query` and `shell`: SQL on a replica at any state."""

from __future__ import annotations

import argparse

from .args import Commands, add_format, add_state_options, connect_at_state
from .output import write_results


def register(commands: Commands) -> None:
    shell = commands.add("shell", "interactive SQL shell on a replica (APSW shell + time travel)", _run_shell)
    shell.add_argument("replica", help="replica URL: s3://bucket/path, file:///path or a path, webdav://host/path")
    add_state_options(shell)

    query = commands.add("query", "run SQL against a replica and print the rows", _run_query)
    query.add_argument("replica")
    query.add_argument("sql")
    add_state_options(query)
    add_format(query, ("table", "csv", "json"))


def _run_query(args: argparse.Namespace) -> int:
    from ..notebook import results

    # A statement without result columns prints nothing; an empty result prints its header.
    write_results([result for result in results(connect_at_state(args), args.sql) if result[0]], args.format)
    return 0


def _run_shell(args: argparse.Namespace) -> int:
    from ..shell import run_shell

    return run_shell(connect_at_state(args))
