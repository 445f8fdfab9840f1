"""PEP 249 over replicas written by real Litestream: descriptions, fetching, time travel, refusals."""

from __future__ import annotations

import datetime

import apsw
import pytest

from litestream_vfs import dbapi
from support.replicas import ReplicaFixture, step



@pytest.fixture()
def db(file_replica: ReplicaFixture):
    with dbapi.connect(file_replica.url) as connection:
        yield connection


def test_module_globals_follow_the_pep() -> None:
    assert dbapi.apilevel == "2.0"
    assert dbapi.paramstyle == "qmark"
    assert dbapi.threadsafety in (1, 2, 3)
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
        assert isinstance(getattr(dbapi, name), type) and issubclass(getattr(dbapi, name), Exception)
    for name in ("DataError", "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
                 "NotSupportedError"):
        assert issubclass(getattr(dbapi, name), dbapi.DatabaseError)
    assert issubclass(dbapi.InterfaceError, dbapi.Error) and issubclass(dbapi.DatabaseError, dbapi.Error)


def test_rows_and_description_match_restore(db, file_replica: ReplicaFixture) -> None:
    sql = "SELECT TrackId, Name, Composer, UnitPrice FROM Track WHERE AlbumId < 10 ORDER BY TrackId"
    cursor = db.cursor()
    assert cursor.execute(sql, ()) is cursor
    assert [column[:2] for column in cursor.description] == [
        ("TrackId", "INTEGER"), ("Name", "NVARCHAR(200)"), ("Composer", "NVARCHAR(220)"),
        ("UnitPrice", "NUMERIC(10,2)")]
    assert all(len(column) == 7 for column in cursor.description)
    assert cursor.rowcount == -1
    first = cursor.fetchone()
    cursor.arraysize = 3
    some = cursor.fetchmany()
    more = cursor.fetchmany(5)
    rest = cursor.fetchall()
    rows = [first, *some, *more, *rest]
    assert len(some) == 3 and len(more) == 5
    assert rows == file_replica.truth(None, sql)
    assert None in {row[2] for row in rows}  # NULL composers come back as None
    assert cursor.rowcount == len(rows)
    assert cursor.fetchone() is None and cursor.fetchall() == [] and cursor.fetchmany(2) == []


def test_empty_result_still_has_a_description(db) -> None:
    cursor = db.execute("SELECT ArtistId, Name FROM Artist WHERE ArtistId < 0")
    assert [column[0] for column in cursor.description] == ["ArtistId", "Name"]
    assert cursor.fetchall() == [] and cursor.rowcount == 0
    assert db.cursor().description is None


def test_qmark_and_named_parameters_and_iteration(db) -> None:
    qmark = db.execute("SELECT Name FROM Artist WHERE ArtistId IN (?, ?) ORDER BY ArtistId", (1, 2)).fetchall()
    named = db.execute("SELECT Name FROM Artist WHERE ArtistId IN (:a, :b) ORDER BY ArtistId",
                       {"a": 1, "b": 2}).fetchall()
    assert qmark == named == [("AC/DC",), ("Accept",)]
    assert [row for row in db.execute("SELECT ArtistId FROM Artist WHERE ArtistId <= 3")] == [(1,), (2,), (3,)]
    many = db.cursor().executemany("SELECT Name FROM Artist WHERE ArtistId = ?", [(1,), (2,)])
    assert many.fetchall() == [("AC/DC",), ("Accept",)]


def test_blobs_large_integers_and_dates(db, file_replica: ReplicaFixture) -> None:
    sql = "SELECT id, payload FROM bulk ORDER BY id LIMIT 3"
    assert db.execute(sql).fetchall() == file_replica.truth(None, sql)
    assert isinstance(db.execute(sql).fetchone()[1], bytes)
    big = 2**63 - 1
    assert db.execute("SELECT ?, ? - 1, -?", (big, big, big)).fetchone() == (big, big - 1, -big)
    when = datetime.datetime(2024, 2, 1)
    dated = "SELECT count(*) FROM Invoice WHERE InvoiceDate >= {}"
    assert db.execute(dated.format("?"), (when,)).fetchall() == file_replica.truth(
        None, dated.format("'2024-02-01 00:00:00'"))
    assert dbapi.Binary(b"\x00") == b"\x00" and dbapi.Timestamp(2024, 1, 1) == when.replace(month=1)


def test_type_objects_compare_with_declared_types() -> None:
    assert dbapi.STRING == "NVARCHAR(120)" and dbapi.NUMBER == "INTEGER" and dbapi.NUMBER == "NUMERIC(10,2)"
    assert dbapi.BINARY == "BLOB" and dbapi.DATETIME == "DATETIME" and dbapi.ROWID == "INTEGER"
    assert dbapi.NUMBER != "DATETIME" and dbapi.STRING != "INTEGER"
    assert dbapi.TimestampFromTicks(0) == datetime.datetime.fromtimestamp(0).replace(microsecond=0)


def test_time_travel_by_argument_and_by_pragma(file_replica: ReplicaFixture) -> None:
    before = step(file_replica, "initial")
    sql = "SELECT count(*) FROM Artist"
    with dbapi.connect(file_replica.url, txid=f"{before:016x}") as past:
        assert past.execute(sql).fetchall() == file_replica.truth(before, sql)
        (when,) = past.execute("SELECT time FROM litestream_history WHERE current").fetchone()
    with dbapi.connect(file_replica.url, time=when) as at_time:
        assert at_time.execute(sql).fetchall() == file_replica.truth(before, sql)
    with dbapi.connect(file_replica.url) as db:
        assert db.execute(sql).fetchall() == file_replica.truth(None, sql)
        db.execute(f"PRAGMA litestream_txid = '{before:016x}'")
        assert db.execute(sql).fetchall() == file_replica.truth(before, sql)
    assert file_replica.truth(before, sql) != file_replica.truth(None, sql)


@pytest.mark.parametrize("sql, error", [
    ("INSERT INTO Artist(Name) VALUES ('x')", dbapi.OperationalError),
    ("DELETE FROM Track", dbapi.OperationalError),
    ("CREATE TABLE t(x)", dbapi.OperationalError),
    ("SELECT * FROM no_such_table", dbapi.ProgrammingError),
    ("SELEKT 1", dbapi.ProgrammingError),
])
def test_writes_and_bad_sql_raise_pep_classes(db, sql: str, error: type) -> None:
    with pytest.raises(error) as info:
        db.execute(sql).fetchall()
    assert type(info.value) is error and info.value.__cause__ is not None
    db.commit()
    db.rollback()  # no-ops, also after a refusal
    assert db.execute("SELECT count(*) FROM Genre").fetchone()[0] > 0


def test_wrong_parameters_and_closed_objects(file_replica: ReplicaFixture) -> None:
    db = dbapi.connect(file_replica.url)
    with pytest.raises(dbapi.ProgrammingError):
        db.execute("SELECT ?", (1, 2))
    with pytest.raises(dbapi.ProgrammingError):
        db.execute("SELECT ?", "text")
    cursor = db.cursor()
    cursor.close()
    with pytest.raises(dbapi.ProgrammingError):
        cursor.execute("SELECT 1")
    db.close()
    db.close()  # closing twice is harmless
    for call in (db.cursor().execute, db.commit, db.rollback):
        with pytest.raises(dbapi.ProgrammingError):
            call("SELECT 1") if call.__name__ == "execute" else call()


def test_bad_time_and_missing_replica_are_database_errors(file_replica: ReplicaFixture, tmp_path) -> None:
    with pytest.raises(dbapi.ProgrammingError, match="blorp"):
        dbapi.connect(file_replica.url, time="blorp")
    with pytest.raises(dbapi.OperationalError):
        dbapi.connect(str(tmp_path / "nothing-here")).execute("SELECT 1 FROM sqlite_master").fetchall()


def test_uri_parameters_pass_through(file_replica: ReplicaFixture, tmp_path) -> None:
    cache = tmp_path / "cache"
    with dbapi.connect(file_replica.url, cache_dir=str(cache)) as db:
        assert db.execute("SELECT count(*) FROM Album").fetchone()[0] > 0
    assert any(cache.iterdir())


def test_polars_reads_a_dbapi_connection_in_batches(db, file_replica: ReplicaFixture) -> None:
    import polars as pl

    sql = "SELECT id, label, payload FROM bulk ORDER BY id"
    batches = list(pl.read_database(sql, db, iter_batches=True, batch_size=40))
    empty = pl.read_database("SELECT id, label FROM bulk WHERE id < 0", db)
    assert pl.concat(batches).rows() == file_replica.truth(None, sql)
    assert [batch.height for batch in batches[:-1]] == [40] * (len(batches) - 1)
    assert batches[0].schema["payload"] == pl.Binary and empty.columns == ["id", "label"] and empty.height == 0


def test_a_half_read_statement_is_finished_by_close_and_by_the_next_execute(db) -> None:
    """An unfinished SELECT holds its read transaction (and so its state) until the cursor lets go of it."""
    cursor = db.execute("SELECT ArtistId FROM Artist")
    cursor.fetchone()
    assert db.apsw.txn_state("main") == apsw.SQLITE_TXN_READ
    cursor.close()
    assert db.apsw.txn_state("main") == apsw.SQLITE_TXN_NONE
    cursor = db.execute("SELECT ArtistId FROM Artist")
    cursor.fetchmany(2)
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)] and db.apsw.txn_state("main") == apsw.SQLITE_TXN_NONE
    assert cursor.description == (("1", None, None, None, None, None, None),)


def test_jupysql_takes_a_dbapi_connection(db, file_replica: ReplicaFixture) -> None:
    import warnings

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
    shell.user_ns["replica_db"] = db
    sql = "SELECT ArtistId, Name FROM Artist WHERE ArtistId < 4"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shell.run_line_magic("sql", "replica_db --alias dbapi")
        rows = shell.run_cell_magic("sql", "dbapi", sql).DataFrame()
        empty = shell.run_cell_magic("sql", "dbapi", "SELECT ArtistId, Name FROM Artist WHERE 0").DataFrame()
    shell.run_line_magic("sql", "--close dbapi")
    assert list(rows.itertuples(index=False, name=None)) == file_replica.truth(None, sql)
    assert list(empty.columns) == ["ArtistId", "Name"] and empty.empty
