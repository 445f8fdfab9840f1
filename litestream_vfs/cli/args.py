"""Options shared by several commands, and the one way a command module adds a subcommand."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import apsw

Run = Callable[[argparse.Namespace], int]


VERIFY_MODES = ("auto", "full", "ranges")


def debug_options() -> argparse.ArgumentParser:
    """`--debug` and `--verify`, accepted before or after the subcommand (SUPPRESS keeps a later
    subparser from resetting them)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    add_verify(parent, argparse.SUPPRESS)
    return parent


def add_verify(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--verify", choices=VERIFY_MODES, default=default,
                        help="when a file's checksum is verified relative to serving its pages "
                             "(default auto: files up to 1 MiB before, larger ones in the background)")


class VersionAction(argparse.Action):
    """`--version`: the installed version, read from the package metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse's hook
        from ..distribution import NAME, version

        found = version()
        print(f"{parser.prog} {found} ({NAME})" if found else
              f"{parser.prog}: version unknown: {NAME} is not installed (run `pip install -e .` in its checkout)")
        parser.exit()


class Commands:
    """The subcommands of `litestream-vfs`: each command module calls `add` once per command it offers."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        self._common = [debug_options()]

    def add(self, name: str, help: str, run: Run) -> argparse.ArgumentParser:
        """A new subcommand `name` whose parsed arguments go to `run` (which returns the exit status)."""
        parser = self._subparsers.add_parser(name, help=help, description=help, parents=self._common)
        parser.set_defaults(run=run)
        return parser


def add_state_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--time", help="read the last state at or before this time (RFC 3339 or e.g. '1 hour ago')")
    group.add_argument("--txid", help="read exactly this state (hex TXID)")


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help="output format")


def connect_at_state(args: argparse.Namespace) -> "apsw.Connection":
    """A connection at --time/--txid; open_replica first, so a directory URL or an empty replica fails clearly."""
    from ..connect import connect, open_replica

    open_replica(args.replica)
    return connect(args.replica, time=args.time, txid=args.txid)


def add_range_options(parser: argparse.ArgumentParser) -> None:
    """`--from X --to Y`: the stretch of history a command looks at (TXIDs or times)."""
    parser.add_argument("--from", dest="from_", help="first state: TXID (16 hex) or time (default: the earliest)")
    parser.add_argument("--to", help="last state: TXID (16 hex) or time (default: the latest)")
