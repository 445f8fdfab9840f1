"""Query results as Arrow: a whole `pyarrow.Table`, or a `RecordBatchReader` one batch at a time.

Rows are turned into Arrow a chunk of at most 1,024 at a time, each chunk's
columns typed by `arrow_types`, and chunks joined into batches of
`batch_size` rows. Small chunks matter: their row tuples die young, so
Python's cyclic garbage collector never has to walk a whole batch of them
(with 10,000-row chunks it made reading several times slower). The reader
fixes its schema from its first batch (pass `schema=` to choose it
yourself); `arrow()` reconciles all batches, so a column that is NULL at
first and integer later is int64.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import apsw

from .arrow_types import ColumnTypeError, reconcile, typed_array, widen
from .described import Described

if TYPE_CHECKING:
    import pyarrow

    from .dbapi import Connection as DBAPIConnection

    Source = str | apsw.Connection | DBAPIConnection

__all__ = ["arrow", "arrow_batches", "ColumnTypeError", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 10_000
#: Rows turned into Arrow at once (see above).
CHUNK_ROWS = 1024
Params = Sequence[Any] | Mapping[str, Any] | None
#: A batch as typed chunks: per chunk, one array per column.
Chunks = list[list["pyarrow.Array"]]


def arrow(source: Source, sql: str, params: Params = None, *, time: str | None = None,
          txid: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> "pyarrow.Table":
    """All rows of `sql` on a replica URL (at `time`/`txid`, else latest) or an open connection, as a Table."""
    import pyarrow as pa

    with _described_rows(source, sql, params, time, txid) as (described, rows):
        batches = [_joined(_schema_of(described, batch), batch) for batch in _typed_batches(described, rows, batch_size)]
    schema = pa.schema([(name, reconcile(name, declared, [batch.schema.field(index).type for batch in batches]))
                        for index, (name, declared) in enumerate(described.columns)])
    return pa.Table.from_batches([_joined(schema, [batch.columns]) for batch in batches], schema=schema)


def arrow_batches(source: Source, sql: str, params: Params = None, *, time: str | None = None,
                  txid: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                  schema: "pyarrow.Schema | None" = None) -> "pyarrow.RecordBatchReader":
    """Rows of `sql` as a reader of `batch_size`-row batches: memory holds about one batch, not the result.

    The connection, when opened here from a URL, is closed once the reader is exhausted or dropped.
    """
    import pyarrow as pa

    chosen = schema is not None
    cleanup = ExitStack()
    with cleanup:
        described, rows = cleanup.enter_context(_described_rows(source, sql, params, time, txid))
        batches = _typed_batches(described, rows, batch_size)
        first = next(batches, [])
        if schema is None:
            schema = _schema_of(described, first)
        joined = (_joined(schema, batch, chosen=chosen) for batch in itertools.chain([first] if first else [], batches))
        produced = _closing_after(joined, cleanup.pop_all())
    return pa.RecordBatchReader.from_batches(schema, produced)


def _closing_after(batches: Iterator["pyarrow.RecordBatch"], cleanup: ExitStack) -> Iterator["pyarrow.RecordBatch"]:
    with cleanup:
        yield from batches


def _schema_of(described: Described, batch: Chunks) -> "pyarrow.Schema":
    """The schema a batch's chunks agree on (declared types for columns they leave NULL)."""
    import pyarrow as pa

    return pa.schema([(name, reconcile(name, declared, [chunk[index].type for chunk in batch]))
                      for index, (name, declared) in enumerate(described.columns)])


def _joined(schema: "pyarrow.Schema", batch: Chunks, *, chosen: bool = False) -> "pyarrow.RecordBatch":
    """One record batch of `schema` from a batch's typed chunks (a single chunk is not copied)."""
    import pyarrow as pa

    def column(index: int, field: "pyarrow.Field") -> "pyarrow.Array":
        arrays = [widen(field.name, chunk[index], field.type, chosen=chosen) for chunk in batch]
        return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)

    return pa.RecordBatch.from_arrays([column(index, field) for index, field in enumerate(schema)], schema=schema)


def _typed_batches(described: Described, rows: Iterator[tuple], batch_size: int) -> Iterator[Chunks]:
    """Per batch of `batch_size` rows (the last may be short), its rows as typed chunks."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    exhausted = False
    while not exhausted:
        batch: Chunks = []
        wanted = batch_size
        while wanted and not exhausted:
            size = min(CHUNK_ROWS, wanted)
            chunk = list(itertools.islice(rows, size))
            exhausted = len(chunk) < size
            if chunk:
                batch.append([typed_array(name, declared, values)
                              for (name, declared), values in zip(described.columns, zip(*chunk))])
                wanted -= len(chunk)
        if batch:
            yield batch


@contextmanager
def _described_rows(source: Source, sql: str, params: Params, time: str | None,
                    txid: str | None) -> Iterator[tuple[Described, Iterator[tuple]]]:
    """(columns, rows) of `sql`, on a connection opened here (and closed after) when `source` is a URL."""
    from .connect import connect

    if isinstance(source, str):
        connection, owned = connect(source, time=time, txid=txid), True
    else:
        if time or txid:
            raise ValueError("time/txid apply to a replica URL; for a connection use PRAGMA litestream_time")
        connection, owned = getattr(source, "apsw", source), False
    try:
        described = Described(connection.cursor())
        rows = described.cursor.execute(sql, params or ())
        yield described, rows
    finally:
        if owned:
            connection.close()
