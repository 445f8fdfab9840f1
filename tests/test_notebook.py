"""litestream_vfs.notebook: query results (every statement's, with names even when empty) and read_sql."""

from __future__ import annotations

import pytest

from litestream_vfs import connect
from litestream_vfs.notebook import query, read_sql, results

GENRES = "SELECT GenreId, Name FROM Genre WHERE GenreId <= 3 ORDER BY GenreId"
COUNT = "SELECT count(*) AS n FROM Track"
NONE = "SELECT Name FROM MediaType WHERE 0"


@pytest.fixture(scope="module")
def latest(file_replica):
    return file_replica.litestream_txids()[-1]


def test_results_gives_each_statement_its_own_columns_and_rows(file_replica, latest):
    db = connect(file_replica.url)
    found = results(db, f"{GENRES}; PRAGMA cache_size = 100; {COUNT}; {NONE}")
    assert found == [(["GenreId", "Name"], file_replica.truth(latest, GENRES)), ([], []),
                     (["n"], file_replica.truth(latest, COUNT)), (["Name"], [])]


def test_query_names_the_columns_of_an_empty_result(file_replica):
    assert query(connect(file_replica.url), NONE) == (["Name"], [])


def test_read_sql_at_a_txid_matches_litestream_restore(file_replica):
    before = dict(file_replica.step_txids)["insert genre"] - 1
    frame = read_sql(file_replica.url, GENRES.replace("<= 3", ">= 99"), txid=f"{before:x}")
    assert list(frame.columns) == ["GenreId", "Name"]
    assert [tuple(row) for row in frame.itertuples(index=False)] == file_replica.truth(before, GENRES.replace("<= 3", ">= 99"))
    assert len(read_sql(file_replica.url, GENRES.replace("<= 3", ">= 99"))) == 1 + len(frame)
