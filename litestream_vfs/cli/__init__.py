"""`litestream-vfs`: query, inspect, validate and restore Litestream replicas from a shell.

Errors are one line on stderr and exit status 1 (2 for usage errors); `--debug`,
anywhere on the command line, shows the traceback instead; `--verify MODE`, anywhere,
is `verify=` for every connection the command opens.

Each command group is a module here with a `register(commands)` function
(see `args.Commands`); a new group is one new module named in COMMAND_MODULES.
Command modules import their machinery when they run, so `--help` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from ..distribution import refuse_foreign_package
from .args import Commands, VersionAction, add_verify

#: Modules of this package that add subcommands, in the order `--help` lists them.
COMMAND_MODULES = ("query", "history", "restore", "changes", "blame", "bisect", "fleet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litestream-vfs", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_verify(parser, None)
    parser.add_argument("--version", action=VersionAction)
    commands = Commands(parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; any error ends in one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        refuse_foreign_package(sys.modules.get("litestream_vfs"))  # e.g. the Go VFS wheel's __init__
        if args.verify:
            from ..process import PROCESS

            PROCESS.configure(verify=args.verify)
        status = args.run(args)
        sys.stdout.flush()  # so a reader that left early (`| head`) is noticed here
        return status
    except BrokenPipeError:  # nothing more to say to a reader that left; quiet, as other tools are
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes a message
        if args.debug:
            raise
        print(f"litestream-vfs: error: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: BaseException) -> str:
    """The message of an error we anticipate; for anything else also its type and where to look."""
    if isinstance(exc, (ImportError, OSError, ValueError)):  # ImportError: maybe our package is not ours
        return one_line(exc)
    from ..errors import LitestreamVFSError

    apsw = sys.modules.get("apsw")
    if isinstance(exc, LitestreamVFSError) or (apsw and isinstance(exc, apsw.Error)):
        return one_line(exc)
    return f"{type(exc).__name__}: {one_line(exc)} (unexpected; run with --debug for the traceback)"


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
