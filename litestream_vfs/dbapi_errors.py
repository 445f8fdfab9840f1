"""PEP 249's exception classes, and the one table that maps APSW's and ours onto them.

SQLAlchemy and other DB-API users catch these by class (SQLAlchemy even by
class name), so every error leaving `litestream_vfs.dbapi` is one of them,
with the original chained as its `__cause__`.
"""

from __future__ import annotations

import builtins
from contextlib import contextmanager
from typing import Iterator

import apsw

from .errors import ChecksumMismatch, LitestreamVFSError, LTXError, TimeParseError


class Warning(builtins.Exception):  # noqa: A001 - the PEP's name
    """Important warnings (none are raised: a replica is read-only)."""


class Error(builtins.Exception):
    """Base class of every error this module raises."""


class InterfaceError(Error):
    """Misuse of the interface rather than of the database."""


class DatabaseError(Error):
    """Errors of the database (a damaged replica file among them)."""


class DataError(DatabaseError):
    """A value out of range or too big."""


class OperationalError(DatabaseError):
    """The database's operation: writes to a read-only replica, storage and network errors, interrupts."""


class IntegrityError(DatabaseError):
    """A constraint failed."""


class InternalError(DatabaseError):
    """SQLite's internal errors."""


class ProgrammingError(DatabaseError):
    """Bad SQL, a missing table, wrong parameters, a closed cursor or connection, a bad time or TXID."""


class NotSupportedError(DatabaseError):
    """An API this database does not support."""


#: First match wins, so subclasses come before their bases.
_TRANSLATION: tuple[tuple[type[BaseException], type[Error]], ...] = (
    (TimeParseError, ProgrammingError),
    (ChecksumMismatch, DatabaseError),
    (LTXError, DatabaseError),
    (LitestreamVFSError, OperationalError),
    (apsw.ConstraintError, IntegrityError),
    (apsw.MismatchError, IntegrityError),
    (apsw.TooBigError, DataError),
    (apsw.RangeError, DataError),
    (apsw.InternalError, InternalError),
    (apsw.CorruptError, DatabaseError),
    (apsw.NotADBError, DatabaseError),
    (apsw.SQLError, ProgrammingError),
    (apsw.BindingsError, ProgrammingError),
    (apsw.ExecutionCompleteError, ProgrammingError),
    (apsw.CursorClosedError, ProgrammingError),
    (apsw.ConnectionClosedError, ProgrammingError),
    (apsw.MisuseError, InterfaceError),
    (apsw.ThreadingViolationError, InterfaceError),
    (apsw.Error, OperationalError),
)


def pep249_class(exc: BaseException) -> type[Error] | None:
    """The PEP 249 class an exception maps to (None: not a database error, left alone)."""
    return next((target for source, target in _TRANSLATION if isinstance(exc, source)), None)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise APSW's and the package's errors as the PEP's classes, the original chained."""
    try:
        yield
    except Error:
        raise
    except (apsw.Error, LitestreamVFSError) as exc:
        target = pep249_class(exc) or DatabaseError
        raise target(f"{type(exc).__name__}: {exc}") from exc
