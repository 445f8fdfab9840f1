"""`litestream-vfs`: query, inspect, validate and restore Litestream replicas from a shell.

Errors are one line on stderr and exit status 1 (2 for usage errors); `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import apsw

from .changes import change_log, diff
from .connect import connect, open_replica, select_state
from .errors import LitestreamVFSError
from .notebook import query
from .progress import ProgressBar
from .restore import restore
from .timeparse import format_time, format_txid
from .validate import validate


def _add_state_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--time", help="read the last state at or before this time (RFC 3339 or e.g. '1 hour ago')")
    group.add_argument("--txid", help="read exactly this state (hex TXID)")


def _add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litestream-vfs", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    shell = commands.add_parser("shell", help="interactive SQL shell on a replica (APSW shell + time travel)")
    shell.add_argument("replica", help="replica URL: s3://bucket/path, file:///path or a path, webdav://host/path")
    _add_state_options(shell)
    shell.set_defaults(run=_run_shell)

    query = commands.add_parser("query", help="run SQL against a replica and print the rows")
    query.add_argument("replica")
    query.add_argument("sql")
    _add_state_options(query)
    _add_format(query, ("table", "csv", "json"))
    query.set_defaults(run=_run_query)

    history = commands.add_parser("history", help="every restorable state: TXID, time, level, size")
    history.add_argument("replica")
    _add_format(history, ("table", "json", "csv"))
    history.set_defaults(run=_run_history)

    rest = commands.add_parser("restore", help="write a state to a SQLite file (byte-identical to litestream restore)")
    rest.add_argument("replica")
    rest.add_argument("-o", "--output", required=True, help="database file to create (never overwritten)")
    _add_state_options(rest)
    rest.set_defaults(run=_run_restore)

    check = commands.add_parser("validate", help="verify every file's checksum and the latest state's plan")
    check.add_argument("replica")
    check.set_defaults(run=_run_validate)

    log = commands.add_parser("log", help="per state: the tables and indexes whose pages changed")
    log.add_argument("replica")
    log.add_argument("--table", help="only states that changed this table or index")
    _add_format(log, ("table", "json"))
    log.set_defaults(run=_run_log)

    delta = commands.add_parser("diff", help="rows of a table added, removed and changed between two states")
    delta.add_argument("replica")
    delta.add_argument("table")
    delta.add_argument("--from", dest="from_", required=True, help="earlier state: TXID (16 hex) or time")
    delta.add_argument("--to", required=True, help="later state: TXID (16 hex) or time")
    _add_format(delta, ("table", "csv", "json"))
    delta.set_defaults(run=_run_diff)
    return parser


# -- commands ------------------------------------------------------------------
def _connect(args: argparse.Namespace) -> apsw.Connection:
    """A connection at --time/--txid; open_replica first, so a directory URL or an empty replica fails clearly."""
    open_replica(args.replica)
    return connect(args.replica, time=args.time, txid=args.txid)


def _run_query(args: argparse.Namespace) -> int:
    columns, rows = query(_connect(args), args.sql)
    if columns:  # a statement without result columns prints nothing; an empty result prints its header
        write_rows(columns, rows, args.format)
    return 0


def _run_history(args: argparse.Namespace) -> int:
    replica = open_replica(args.replica)
    entries = replica.history()
    now = datetime.now(timezone.utc)
    if args.format == "json":
        rows = [{"txid": format_txid(e.txid), "time": format_time(e.timestamp), "level": e.level,
                 "size": e.file_size, "db_size": e.db_size} for e in entries]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    columns = ["txid", "time (UTC)", "local time", "age", "level", "file size", "db size"]
    rows = [(format_txid(e.txid), format_time(e.timestamp),
             e.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"), age_text(now - e.timestamp),
             e.level, e.file_size, e.db_size) for e in entries]
    write_rows(columns, rows, args.format)
    return 0


def _run_restore(args: argparse.Namespace) -> int:
    replica = open_replica(args.replica)
    state = select_state(replica, args.time, args.txid)
    with ProgressBar(f"restoring {state.describe()}") as bar:
        restore(replica, state, args.output, progress=bar.update)
    print(f"restored {state.describe()} to {args.output} ({state.db_size} bytes)", file=sys.stderr)
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    replica = open_replica(args.replica)
    report = validate(replica, progress=lambda line: print(line, flush=True))
    print(report.summary())
    return 0 if report.ok else 1


def _run_log(args: argparse.Namespace) -> int:
    entries = change_log(args.replica, table=args.table)
    if args.format == "json":
        rows = [{"txid": format_txid(e.txid), "time": format_time(e.time), "tables": dict(e.tables)}
                for e in entries]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    columns = ["txid", "time (UTC)", "level", "covers", "tables (pages changed)"]
    write_rows(columns, ((format_txid(e.txid), format_time(e.time), e.level,
                          f"{format_txid(e.min_txid)}..{format_txid(e.txid)}" if e.coarse else "1 transaction",
                          ", ".join(f"{name} ({pages})" for name, pages in e.tables.items()))
                         for e in entries), args.format)
    return 0


def _run_diff(args: argparse.Namespace) -> int:
    changes = diff(args.replica, args.table, args.from_, args.to)
    if args.format == "json":
        json.dump([{k: v if k == "change" else _json_row(v) for k, v in row.items()} for row in changes],
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    write_rows(["change", "key", "before", "after"],
               ((row["change"], _text_row(row["key"]), _text_row(row["before"]), _text_row(row["after"]))
                for row in changes), args.format)
    return 0


def _json_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: _jsonable(v) for k, v in row.items()}


def _text_row(row: dict[str, Any] | None) -> str | None:
    """`col=value, ...` for table and CSV output (NULL row: None, shown as NULL)."""
    return None if row is None else ", ".join(f"{k}={_cell(v)}" for k, v in row.items())


def _run_shell(args: argparse.Namespace) -> int:
    from .shell import run_shell

    return run_shell(_connect(args))


# -- output --------------------------------------------------------------------
def age_text(delta: Any) -> str:
    """A short relative age ('42s ago', '5m ago', '3h ago', '2d ago')."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, out: Any = None) -> None:
    """Rows as an aligned table, CSV, or a JSON list of objects."""
    out = out or sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return
    if fmt == "json":
        json.dump([dict(zip(columns, map(_jsonable, row))) for row in rows], out, indent=1)
        out.write("\n")
        return
    values = [list(row) for row in rows]
    text = [[_cell(v) for v in row] for row in values]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r[i], (int, float)) for r in values if r[i] is not None)
               for i in range(len(columns))]
    out.write("  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(columns, widths, numeric)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text:
        out.write("  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)


def _jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (LitestreamVFSError, apsw.Error, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"litestream-vfs: error: {one_line(exc)}", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
