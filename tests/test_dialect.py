"""The `litestream` SQLAlchemy dialect with real tools: reflection, pandas, Polars, jupysql through IPython."""

from __future__ import annotations

import importlib.metadata
import tomllib
import warnings
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import registry

from litestream_vfs import dbapi
from litestream_vfs.dialect import LitestreamDialect
from support.replicas import ReplicaFixture

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINT = "litestream_vfs.dialect:LitestreamDialect"


def test_entry_point_is_declared_and_resolves() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["sqlalchemy.dialects"]["litestream"] == ENTRY_POINT
    module, _, name = ENTRY_POINT.partition(":")
    assert getattr(importlib.import_module(module), name) is LitestreamDialect


@pytest.fixture(scope="module", autouse=True)
def dialect_available() -> None:
    """The installed entry point when the package is installed; else the same class by hand (a fresh worktree)."""
    installed = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="sqlalchemy.dialects")}
    if installed.get("litestream") != ENTRY_POINT:
        registry.register("litestream", *ENTRY_POINT.split(":"))
    assert registry.load("litestream") is LitestreamDialect


def engine_url(replica: ReplicaFixture, **query: str) -> str:
    extra = "".join(f"&{key}={quote(value, safe='')}" for key, value in query.items())
    return f"litestream:///chinook.db?replica={quote(replica.url, safe='')}{extra}"


@pytest.fixture(scope="module")
def engine(file_replica: ReplicaFixture):
    engine = sa.create_engine(engine_url(file_replica))
    yield engine
    engine.dispose()


def rows_of(frame: pd.DataFrame) -> list[tuple]:
    """A DataFrame's rows as tuples, missing values as None (as SQLite gives them)."""
    return list(frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None))


def txid_of(replica: ReplicaFixture, name: str) -> int:
    return dict(replica.step_txids)[name]


def test_inspector_lists_tables_columns_and_keys(engine, file_replica: ReplicaFixture) -> None:
    inspector = sa.inspect(engine)
    expected = [name for (name,) in file_replica.truth(
        None, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")]
    assert inspector.get_table_names() == expected
    columns = inspector.get_columns("Track")
    assert [column["name"] for column in columns][:3] == ["TrackId", "Name", "AlbumId"]
    assert isinstance(columns[1]["type"], sa.NVARCHAR)
    assert inspector.get_pk_constraint("Track")["constrained_columns"] == ["TrackId"]
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("Track")} >= {"Album", "Genre"}
    assert "bulk_label" in {index["name"] for index in inspector.get_indexes("bulk")}
    invoice = sa.Table("Invoice", sa.MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        (first,) = connection.execute(sa.select(sa.func.min(invoice.c.InvoiceDate))).one()
    assert first.year >= 2000  # DATETIME text parsed by SQLite's dialect


def test_pandas_read_sql_without_warnings(engine, file_replica: ReplicaFixture) -> None:
    sql = "SELECT TrackId, Name, Composer, UnitPrice FROM Track ORDER BY TrackId"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = pd.read_sql(sql, engine)
        empty = pd.read_sql("SELECT ArtistId, Name FROM Artist WHERE ArtistId < 0", engine)
        chunks = list(pd.read_sql(sql, engine, chunksize=1000))
        by_url = pd.read_sql(sql, engine_url(file_replica))  # pandas makes the engine from the URL
        blobs = pd.read_sql(sa.text("SELECT id, payload, 9223372036854775807 AS big FROM bulk WHERE id < :n"),
                            engine, params={"n": 100})
    truth = file_replica.truth(None, sql)
    assert rows_of(frame) == truth and by_url.equals(frame)
    assert frame["Composer"].isna().sum() == sum(row[2] is None for row in truth) > 0
    assert list(empty.columns) == ["ArtistId", "Name"] and len(empty) == 0
    assert [len(chunk) for chunk in chunks[:-1]] == [1000] * (len(chunks) - 1)
    assert pd.concat(chunks, ignore_index=True).equals(frame)
    assert blobs["payload"].map(type).eq(bytes).all() and blobs["big"].eq(2**63 - 1).all()
    assert list(zip(blobs["id"], blobs["payload"])) == file_replica.truth(
        None, "SELECT id, payload FROM bulk WHERE id < 100")


def test_time_travel_per_engine_and_by_pragma(engine, file_replica: ReplicaFixture) -> None:
    before = txid_of(file_replica, "insert artists") - 1
    sql = "SELECT count(*) AS n FROM Artist"
    past = sa.create_engine(engine_url(file_replica, litestream_txid=f"{before:016x}"))
    try:
        with past.connect() as connection:
            (when,) = connection.exec_driver_sql("SELECT time FROM litestream_history WHERE current").one()
        at_time = sa.create_engine(engine_url(file_replica, litestream_time=when))
        assert pd.read_sql(sql, past)["n"].tolist() == [file_replica.truth(before, sql)[0][0]]
        assert pd.read_sql(sql, at_time)["n"].tolist() == [file_replica.truth(before, sql)[0][0]]
        at_time.dispose()
    finally:
        past.dispose()
    assert pd.read_sql(sql, engine)["n"].tolist() == [file_replica.truth(None, sql)[0][0]]
    with engine.connect() as connection:
        connection.exec_driver_sql(f"PRAGMA litestream_txid = '{before:016x}'")
        assert pd.read_sql(sql, connection)["n"].tolist() == [file_replica.truth(before, sql)[0][0]]
        connection.exec_driver_sql("PRAGMA litestream_txid = latest")
    assert file_replica.truth(before, sql) != file_replica.truth(None, sql)


def test_writes_refused_through_sqlalchemy(engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(sa.exc.OperationalError) as info:
            connection.execute(sa.text("UPDATE Artist SET Name = 'x'"))
        assert isinstance(info.value.orig, dbapi.OperationalError)
        with pytest.raises(sa.exc.ProgrammingError):
            connection.execute(sa.text("SELECT * FROM missing"))


def test_url_without_replica_names_what_is_missing() -> None:
    with pytest.raises(sa.exc.ArgumentError, match="replica="):
        sa.create_engine("litestream:///nowhere.db").connect()


def test_polars_read_database_with_iter_batches(engine, file_replica: ReplicaFixture) -> None:
    sql = "SELECT TrackId, Name, Composer FROM Track ORDER BY TrackId"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = pl.read_database(sql, engine)
        batches = list(pl.read_database(sql, engine, iter_batches=True, batch_size=500))
        empty = pl.read_database("SELECT ArtistId, Name FROM Artist WHERE 0", engine)
    assert whole.rows() == file_replica.truth(None, sql)
    assert [batch.height for batch in batches[:-1]] == [500] * (len(batches) - 1)
    assert pl.concat(batches).equals(whole)
    assert empty.columns == ["ArtistId", "Name"] and empty.height == 0


def test_jupysql_magic_through_ipython(file_replica: ReplicaFixture) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
    before = txid_of(file_replica, "insert artists") - 1
    latest_url, past_url = engine_url(file_replica), engine_url(file_replica, litestream_txid=f"{before:016x}")
    sql = "SELECT count(*) AS n FROM Artist"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shell.run_line_magic("sql", f"{latest_url} --alias latest")
        shell.run_line_magic("sql", f"{past_url} --alias past")
        now = shell.run_cell_magic("sql", "latest", sql).DataFrame()
        then = shell.run_cell_magic("sql", "past", sql).DataFrame()
        empty = shell.run_cell_magic("sql", "latest", "SELECT ArtistId, Name FROM Artist WHERE 0").DataFrame()
    shell.run_line_magic("sql", "--close latest")
    shell.run_line_magic("sql", "--close past")
    assert now["n"].tolist() == [file_replica.truth(None, sql)[0][0]]
    assert then["n"].tolist() == [file_replica.truth(before, sql)[0][0]]
    assert list(empty.columns) == ["ArtistId", "Name"] and empty.empty
