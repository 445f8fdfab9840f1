"""Replicas as Arrow tables and batch readers, read by pyarrow, Polars, DuckDB and pandas."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import apsw
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import litestream_vfs
from litestream_vfs import dbapi
from litestream_vfs.arrowio import ColumnTypeError, arrow, arrow_batches
from support.replicas import ReplicaFixture

REPO = Path(__file__).resolve().parents[1]
TRACKS = "SELECT TrackId, Name, Composer, UnitPrice FROM Track ORDER BY TrackId"


def test_table_matches_restore_with_types_from_values_and_declarations(file_replica: ReplicaFixture) -> None:
    table = arrow(file_replica.url, TRACKS)
    assert table.schema == pa.schema([("TrackId", pa.int64()), ("Name", pa.string()),
                                      ("Composer", pa.string()), ("UnitPrice", pa.float64())])
    assert [tuple(row.values()) for row in table.to_pylist()] == file_replica.truth(None, TRACKS)
    assert table.column("Composer").null_count == sum(row[2] is None for row in file_replica.truth(None, TRACKS)) > 0
    blobs = arrow(file_replica.url, "SELECT id, label, payload FROM bulk ORDER BY id")
    assert blobs.schema.field("payload").type == pa.binary()
    assert [tuple(row.values()) for row in blobs.to_pylist()] == file_replica.truth(
        None, "SELECT id, label, payload FROM bulk ORDER BY id")


def test_every_replica_kind_reads_like_restore(replica: ReplicaFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Litestream 0.5.15 and 0.5.17, file and S3: the Arrow table of a past state and of latest equals restore."""
    for key, value in replica.env.items():
        monkeypatch.setenv(key, value)
    sql = "SELECT id, label, payload FROM bulk ORDER BY id"
    past = dict(replica.step_txids)["touch bulk"]
    for txid in (past, None):
        table = arrow(replica.url, sql, txid=f"{txid:016x}" if txid else None)
        assert [tuple(row.values()) for row in table.to_pylist()] == replica.truth(txid, sql)


def test_empty_results_keep_names_and_declared_types(file_replica: ReplicaFixture) -> None:
    empty = arrow(file_replica.url, "SELECT * FROM Invoice WHERE InvoiceId < 0")
    assert empty.num_rows == 0
    assert empty.schema.field("InvoiceId").type == pa.int64()
    assert empty.schema.field("InvoiceDate").type == pa.string()  # DATETIME: text in SQLite
    assert empty.schema.field("BillingCity").type == pa.string()
    assert empty.schema.field("Total").type == pa.float64()  # NUMERIC(10,2)
    reader = arrow_batches(file_replica.url, "SELECT id, payload FROM bulk WHERE id < 0")
    assert reader.schema == pa.schema([("id", pa.int64()), ("payload", pa.binary())])
    assert reader.read_all().num_rows == 0


def test_expressions_nulls_blobs_and_large_integers(file_replica: ReplicaFixture) -> None:
    table = arrow(file_replica.url, "SELECT NULL AS missing, 9223372036854775807 AS biggest, "
                  "-9223372036854775808 AS smallest, x'00ff' AS blob, 0.5 AS half, 'é' AS text")
    assert table.to_pylist() == [{"missing": None, "biggest": 2**63 - 1, "smallest": -(2**63),
                                  "blob": b"\x00\xff", "half": 0.5, "text": "é"}]
    assert [field.type for field in table.schema] == [pa.null(), pa.int64(), pa.int64(), pa.binary(),
                                                      pa.float64(), pa.string()]


def test_batches_are_bounded_and_equal_the_table(file_replica: ReplicaFixture) -> None:
    reader = arrow_batches(file_replica.url, TRACKS, batch_size=1500)
    sizes = [batch.num_rows for batch in reader]
    rows = len(file_replica.truth(None, TRACKS))
    assert sizes == [1500] * (rows // 1500) + ([rows % 1500] if rows % 1500 else [])
    assert arrow_batches(file_replica.url, TRACKS, batch_size=700).read_all().equals(arrow(file_replica.url, TRACKS))
    with pytest.raises(ValueError, match="batch_size"):
        arrow(file_replica.url, TRACKS, batch_size=0)


def test_time_travel_and_open_connections(file_replica: ReplicaFixture) -> None:
    before = dict(file_replica.step_txids)["insert artists"] - 1
    sql = "SELECT ArtistId, Name FROM Artist ORDER BY ArtistId"
    past = arrow(file_replica.url, sql, txid=f"{before:016x}")
    assert [tuple(row.values()) for row in past.to_pylist()] == file_replica.truth(before, sql)
    with dbapi.connect(file_replica.url) as db:
        assert arrow(db, sql).num_rows == len(file_replica.truth(None, sql)) != past.num_rows
        db.execute(f"PRAGMA litestream_txid = '{before:016x}'")
        assert arrow(db, sql).equals(past)
        with pytest.raises(ValueError, match="PRAGMA"):
            arrow(db, sql, time="1 hour ago")
    connection = litestream_vfs.connect(file_replica.url, txid=f"{before:016x}")
    assert arrow_batches(connection, sql, batch_size=7).read_all().equals(past)
    connection.close()


def test_polars_duckdb_and_pandas_read_arrow_directly(file_replica: ReplicaFixture) -> None:
    truth = file_replica.truth(None, TRACKS)
    tbl = arrow(file_replica.url, TRACKS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = pl.from_arrow(tbl)
        by_duckdb = duckdb.sql("SELECT count(*), count(Composer), max(TrackId) FROM tbl").fetchall()
        rdr = arrow_batches(file_replica.url, TRACKS, batch_size=500)
        streamed = duckdb.sql("SELECT sum(UnitPrice) FROM rdr").fetchall()
        pandas_frame = tbl.to_pandas(types_mapper=pd.ArrowDtype)
    assert frame.rows() == truth
    assert by_duckdb == [(len(truth), sum(row[2] is not None for row in truth), max(row[0] for row in truth))]
    assert streamed[0][0] == pytest.approx(sum(row[3] for row in truth))
    assert pandas_frame["TrackId"].dtype == pd.ArrowDtype(pa.int64())
    assert pandas_frame["Composer"].isna().sum() == sum(row[2] is None for row in truth)


def _mixed(rows: list[tuple]) -> apsw.Connection:
    """An in-memory database whose column `v` (declared INTEGER) and `e` (no type) hold `rows`."""
    connection = apsw.Connection(":memory:")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, n NUMERIC(10,2), e)")
    connection.executemany("INSERT INTO t(v, n, e) VALUES (?, ?, ?)", rows)
    return connection


def test_sqlite_dynamic_types_are_reconciled_or_refused() -> None:
    late = _mixed([(None, 1, None)] * 2000 + [(5, 2.5, 7)])
    table = arrow(late, "SELECT v, n, e FROM t ORDER BY id", batch_size=1000)
    assert table.schema == pa.schema([("v", pa.int64()), ("n", pa.float64()), ("e", pa.int64())])
    assert table.column("e").to_pylist()[-1] == 7 and table.column("n").to_pylist()[:2] == [1.0, 1.0]
    with pytest.raises(ColumnTypeError, match="'e'.*schema="):
        arrow_batches(late, "SELECT e FROM t ORDER BY id", batch_size=1000).read_all()
    chosen = pa.schema([("e", pa.int64())])
    assert arrow_batches(late, "SELECT e FROM t ORDER BY id", batch_size=1000, schema=chosen).read_all() \
        .column("e").to_pylist()[-1] == 7
    text_in_integer = _mixed([(1, 1, 1), ("one", 1, 1)])
    with pytest.raises(ColumnTypeError, match="'v'.*several types"):
        arrow(text_in_integer, "SELECT v FROM t")
    across_chunks = _mixed([(1, 1, 1)] * 1500 + [(1, 1, "x")])
    with pytest.raises(ColumnTypeError, match="'e'"):
        arrow(across_chunks, "SELECT e FROM t ORDER BY id")
    inexact = _mixed([(1, 2**60 + 1, 1)])
    with pytest.raises(ColumnTypeError, match="'n'"):
        arrow(inexact, "SELECT n FROM t")


def test_public_names_do_not_import_heavy_libraries() -> None:
    code = ("import sys, litestream_vfs; litestream_vfs.arrow; litestream_vfs.arrow_batches; litestream_vfs.aio; "
            "litestream_vfs.dbapi; print(sorted(m for m in ('pyarrow', 'sqlalchemy', 'pandas', 'polars', 'duckdb') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "[]"


def _throughput(megabytes: int, batch_size: int) -> dict[str, dict]:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "arrow_throughput.py"), "--megabytes",
                           str(megabytes), "--batch-size", str(batch_size), "--methods", "apsw,arrow,arrow_batches",
                           "--repeat", "1", "--json"], capture_output=True, text=True, timeout=900, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout)
    assert all(result["rows"] == measured["rows"] for result in measured["results"])
    return {result["method"]: result for result in measured["results"]} | {"table": measured}


@pytest.mark.parametrize("megabytes, batch_size", [
    pytest.param(16, 1000, id="16MB"),
    pytest.param(100, 10_000, id="100MB", marks=pytest.mark.slow),
])
def test_streaming_memory_is_bounded(megabytes: int, batch_size: int) -> None:
    """Streaming holds about a batch (Arrow) and a constant (process); the whole table holds the table."""
    measured = _throughput(megabytes, batch_size)
    table = measured["table"]
    batch_bytes = batch_size * table["table_bytes"] / table["rows"]
    floor = measured["apsw"]["peak_growth"]  # reading the rows at all: the VFS's caches and read-ahead
    streamed, whole = measured["arrow_batches"], measured["arrow"]
    assert streamed["arrow_pool_peak"] < 8 * batch_bytes + 2**20
    assert whole["arrow_pool_peak"] > 0.8 * table["table_bytes"]
    assert streamed["peak_growth"] - floor < max(32 * 2**20, 0.4 * table["table_bytes"])
    assert streamed["peak_growth"] < whole["peak_growth"]
