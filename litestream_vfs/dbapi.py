"""A PEP 249 (DB-API 2.0) module over read-only replica connections.

    from litestream_vfs import dbapi
    with dbapi.connect("s3://bucket/chinook.db", time="1 hour ago") as db:
        cursor = db.cursor()
        cursor.execute("SELECT Name FROM Artist WHERE ArtistId < ?", (5,))
        cursor.description, cursor.fetchmany(2)

Tools written against DB-API (pandas, Polars, jupysql via SQLAlchemy) need
what APSW does not give: `description` for an empty result (captured when each
statement starts, before it runs), `fetchmany`, `commit`/`rollback` (no-ops:
a replica is read-only), and the PEP's exception classes. Writes fail with
`OperationalError` ("attempt to write a readonly database"), as in `sqlite3`.
"""

from __future__ import annotations

import datetime
import itertools
import time as _time
from typing import Any, Iterator, Mapping, Sequence

import apsw

from .connect import connect as _open
from .described import Described
from .dbapi_errors import (DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
                           NotSupportedError, OperationalError, ProgrammingError, Warning, translated)
from .sqltypes import BLOB, INTEGER, TEXT, affinity, is_temporal

__all__ = [
    "apilevel", "threadsafety", "paramstyle", "connect", "Connection", "Cursor",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks", "TimestampFromTicks", "Binary",
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID",
]

apilevel = "2.0"
#: Threads may share the module, not connections (SQLAlchemy's pool gives each thread its own).
threadsafety = 1
#: `?` placeholders; `:name` placeholders with a mapping work too.
paramstyle = "qmark"
sqlite_version = apsw.sqlite_lib_version()
sqlite_version_info = tuple(int(part) for part in sqlite_version.split("."))

Parameters = Sequence[Any] | Mapping[str, Any]


def connect(url: str, *, time: str | None = None, txid: str | None = None, **uri_params: Any) -> Connection:
    """A DB-API connection on the replica at `url`, at `latest` unless `time` or `txid` is given.

    `uri_params` are further URI parameters of the VFS (cache_dir=, hydrate=, ...).
    """
    label = uri_params.pop("label", None)
    with translated():
        return Connection(_open(url, time=time, txid=txid, label=label, params=uri_params))


class Connection:
    """A read-only connection: commit and rollback have nothing to do."""

    def __init__(self, connection: apsw.Connection) -> None:
        self._apsw: apsw.Connection | None = connection

    @property
    def apsw(self) -> apsw.Connection:
        """The APSW connection underneath (for PRAGMA litestream_time, read_sql, attach...)."""
        if self._apsw is None:
            raise ProgrammingError("Cannot operate on a closed connection.")
        return self._apsw

    def cursor(self) -> Cursor:
        return Cursor(self)

    def execute(self, operation: str, parameters: Parameters | None = None) -> Cursor:
        """Shortcut (as in sqlite3): a new cursor that has executed `operation`."""
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        self.apsw  # noqa: B018 - fails on a closed connection, as the PEP asks

    def rollback(self) -> None:
        self.apsw  # noqa: B018

    def close(self) -> None:
        if self._apsw is not None:
            self._apsw.close()
            self._apsw = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Cursor:
    """Rows of one statement at a time, fetched lazily from an APSW cursor."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        #: -1 until every row of a query has been fetched, then how many there were.
        self.rowcount = -1
        self.lastrowid = None
        self._rows: Iterator[tuple] = iter(())
        self._described: Described | None = None
        self._fetched = 0
        self._closed = False

    @property
    def description(self) -> tuple[tuple, ...] | None:
        """Name and declared type (the type code) of each column of the running statement."""
        columns = self._described.columns if self._described else ()
        return tuple((name, declared, None, None, None, None, None) for name, declared in columns) or None

    def execute(self, operation: str, parameters: Parameters | None = None) -> Cursor:
        return self._run(operation, lambda cursor: cursor.execute(operation, _adapt(parameters)))

    def executemany(self, operation: str, seq_of_parameters: Sequence[Parameters]) -> Cursor:
        bindings = [_adapt(parameters) for parameters in seq_of_parameters]
        return self._run(operation, lambda cursor: cursor.executemany(operation, bindings))

    def _run(self, operation: str, start: Any) -> Cursor:
        if not isinstance(operation, str):
            raise ProgrammingError(f"operation must be SQL text, not {type(operation).__name__}")
        cursor = self._check_open().connection.apsw.cursor()
        self._release()
        self._described = Described(cursor)
        self.rowcount, self._fetched = -1, 0
        with translated():
            self._rows = start(self._described.cursor)
        return self

    def fetchone(self) -> tuple | None:
        rows = self.fetchmany(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        wanted = self.arraysize if size is None else size
        return self._take(itertools.islice(self._check_open()._rows, wanted), wanted)

    def fetchall(self) -> list[tuple]:
        return self._take(self._check_open()._rows, None)

    def _take(self, rows: Iterator[tuple], wanted: int | None) -> list[tuple]:
        with translated():
            batch = list(rows)
        self._fetched += len(batch)
        if wanted is None or len(batch) < wanted:
            self.rowcount = self._fetched if self.description else -1
            self._rows = iter(())
        return batch

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as the PEP allows."""

    def setoutputsize(self, size: Any, column: int | None = None) -> None:
        """Accepted and ignored, as the PEP allows."""

    def close(self) -> None:
        self._closed = True
        self._release()

    def _release(self) -> None:
        """Finish the previous statement now, so it no longer holds its read transaction (and state)."""
        if self._described is not None:
            self._described.cursor.close(True)
            self._described = None
        self._rows = iter(())

    def __iter__(self) -> Cursor:
        return self

    def __next__(self) -> tuple:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def _check_open(self) -> Cursor:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        self.connection.apsw  # noqa: B018 - raises once the connection is closed
        return self



def _adapt(parameters: Parameters | None) -> Parameters:
    """Dates and times bound as ISO text, as sqlite3 binds them (SQLite has no date type)."""
    if parameters is None:
        return ()
    if isinstance(parameters, Mapping):
        return {key: _adapt_value(value) for key, value in parameters.items()}
    if isinstance(parameters, (str, bytes)):
        raise ProgrammingError("parameters must be a sequence or a mapping, not a single string")
    return tuple(_adapt_value(value) for value in parameters)


def _adapt_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


class _TypeObject:
    """Compares equal to the declared types (type codes) of one kind: see `_kind`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __eq__(self, type_code: object) -> bool:
        if not isinstance(type_code, str):
            return NotImplemented
        return _kind(type_code) == self.kind or (self.kind == "ROWID" and affinity(type_code) == INTEGER)

    def __hash__(self) -> int:
        return hash(self.kind)


def _kind(declared: str) -> str:
    """STRING, BINARY, DATETIME or NUMBER for a declared type, by SQLite's affinity rules."""
    if is_temporal(declared):
        return "DATETIME"
    return {TEXT: "STRING", BLOB: "BINARY"}.get(affinity(declared), "NUMBER")


STRING, BINARY, NUMBER, DATETIME, ROWID = (_TypeObject(kind) for kind in
                                            ("STRING", "BINARY", "NUMBER", "DATETIME", "ROWID"))

Date, Time, Timestamp, Binary = datetime.date, datetime.time, datetime.datetime, bytes


def DateFromTicks(ticks: float) -> datetime.date:  # noqa: N802 - names from PEP 249
    return Date(*_time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:  # noqa: N802
    return Time(*_time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:  # noqa: N802
    return Timestamp(*_time.localtime(ticks)[:6])
