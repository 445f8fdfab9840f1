"""`restore`: one state of a replica written to a SQLite file."""

from __future__ import annotations

import argparse
import sys

from .args import Commands, add_state_options


def register(commands: Commands) -> None:
    restore = commands.add("restore", "write a state to a SQLite file (byte-identical to litestream restore)",
                           _run_restore)
    restore.add_argument("replica")
    restore.add_argument("-o", "--output", required=True, help="database file to create (never overwritten)")
    add_state_options(restore)


def _run_restore(args: argparse.Namespace) -> int:
    from ..connect import open_replica, select_state
    from ..progress import ProgressBar
    from ..restore import restore

    replica = open_replica(args.replica)
    state = select_state(replica, args.time, args.txid)
    with ProgressBar(f"restoring {state.describe()}") as bar:
        restore(replica, state, args.output, progress=bar.update)
    print(f"restored {state.describe()} to {args.output} ({state.db_size} bytes)", file=sys.stderr)
    return 0
