"""`fleet`: one query over every database in a directory of replicas.

Rows go to stdout (each prefixed by its database's path); each database that
failed is one `db: error` line on stderr and makes the exit status 3, while
the others' rows are still printed.
"""

from __future__ import annotations

import argparse
import sys

from .args import Commands, add_format, add_state_options
from .output import jsonable, write_json, write_rows

#: Exit status when some databases failed (their rows are missing, the others' printed).
SOME_FAILED = 3


def register(commands: Commands) -> None:
    fleet = commands.add("fleet", "run SQL on every database in a directory of replicas (rows prefixed by db)",
                         _run_fleet)
    fleet.add_argument("dir_url", metavar="DIR_URL",
                       help="directory of replicas as Litestream replicates a directory, e.g. s3://bucket/dbs/")
    fleet.add_argument("sql")
    add_state_options(fleet)
    fleet.add_argument("--match", metavar="GLOB", help="only databases whose path under DIR_URL matches, e.g. 'eu/*'")
    fleet.add_argument("--jobs", type=int, default=32, metavar="N", help="databases in flight at once (default 32)")
    fleet.add_argument("--engine", choices=("local", "ray", "dask"), default="local",
                       help="run here, or over a Ray or Dask cluster (default local)")
    add_format(fleet, ("table", "csv", "json"))


def _run_fleet(args: argparse.Namespace) -> int:
    from ..fleet_query import fleet
    from ..progress import ProgressBar

    with ProgressBar("fleet", unit="databases") as bar:
        result = fleet(args.dir_url, args.sql, time=args.time, txid=args.txid, match=args.match,
                       jobs=args.jobs, engine=args.engine, progress=bar.update)
    columns = result.table.column_names
    rows = [tuple(row.values()) for row in result.table.to_pylist()]
    if args.format == "json":
        write_json({"rows": [dict(zip(columns, map(jsonable, row))) for row in rows],
                    "errors": [{"db": db, "error": message} for db, message in result.errors.items()]})
    else:
        write_rows(columns, rows, args.format)
    sys.stdout.flush()
    for db, message in result.errors.items():
        print(f"{db}: {message}", file=sys.stderr)
    return SOME_FAILED if result.errors else 0
