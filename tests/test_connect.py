"""The one place that builds our URIs: names and URIs for replica URLs, connections at a TXID
or time that read what `litestream restore` of that state holds, directories of replicas
refused with the fix, and the state a command asked for."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, unquote, urlsplit

import apsw
import pytest

from litestream_vfs.connect import connect, label_for, open_replica, replica_uri, select_state
from litestream_vfs.errors import OutOfHistory, ReplicaError, TimeParseError
from litestream_vfs.timeparse import format_time, format_txid
from support.truth import ground_truth, table_contents


@pytest.mark.parametrize("url, label", [
    ("s3://bucket/dbs/orders.db", "orders.db"),
    ("s3://bucket/dbs/orders.db?endpoint=http://127.0.0.1:9000&region=x", "orders.db"),
    ("file:///var/backups/app.db/", "app.db"),
    ("/var/backups/app.db", "app.db"),
    ("relative/app.db", "app.db"),
    ("webdav://host/", "replica.db"),
])
def test_label_is_the_last_path_segment(url, label):
    assert label_for(url) == label


def uri_parts(uri: str) -> tuple[str, dict[str, list[str]]]:
    split = urlsplit(uri)
    assert split.scheme == "file"
    return unquote(split.path), parse_qs(split.query)


def test_uri_carries_the_url_and_options_intact():
    url = "s3://bucket/my db.db?endpoint=http://127.0.0.1:9000&region=us-east-1"
    path, query = uri_parts(replica_uri(url, params={"cache_dir": "/tmp/a b&c", "max_lag": 5}))
    assert path == "my db.db"
    assert query == {"vfs": ["litestream"], "replica": [url], "cache_dir": ["/tmp/a b&c"], "max_lag": ["5"]}


def test_a_txid_wins_over_a_time_and_the_label_can_be_chosen():
    _, by_txid = uri_parts(replica_uri("/r", txid="00ff", time="1 hour ago"))
    assert by_txid["litestream_txid"] == ["00ff"] and "litestream_time" not in by_txid
    path, by_time = uri_parts(replica_uri("/r", label="x.db", time="2024-01-01T00:00:00+01:00"))
    assert path == "x.db" and by_time["litestream_time"] == ["2024-01-01T00:00:00+01:00"]


def test_connect_reads_latest_a_txid_and_a_time_like_litestream_restore(file_replica):
    txids = file_replica.litestream_txids()
    history = {entry.txid: entry.timestamp for entry in open_replica(file_replica.url).history()}
    middle = txids[len(txids) // 2]
    for kwargs, txid in (({}, txids[-1]), ({"txid": format_txid(middle)}, middle),
                         ({"time": format_time(history[middle])}, middle)):
        connection = connect(file_replica.url, **kwargs)
        try:
            assert connection.readonly("main")
            assert connection.execute("PRAGMA litestream_txid").fetchone()[0] == format_txid(txid)
            assert table_contents(connection) == ground_truth(file_replica.restore(txid)), kwargs
        finally:
            connection.close()


def test_connect_refuses_a_directory_of_replicas_unless_a_label_picks_one(file_replica, tmp_path):
    directory = tmp_path / "fleet"
    shutil.copytree(file_replica.url, directory / "orders.db", ignore=shutil.ignore_patterns("*.tmp"))
    with pytest.raises(ReplicaError, match=f"{directory}/ names a directory of replicas; pass label='my.db'"):
        connect(f"{directory}/")
    connection = connect(f"{directory}/", label="orders.db")
    try:
        assert table_contents(connection) == ground_truth(file_replica.restore(None))
    finally:
        connection.close()


def test_a_directory_url_that_is_itself_bad_says_what_is_wrong():
    with pytest.raises(ReplicaError, match="no bucket name"):
        connect("s3:///")


def test_open_replica_refuses_a_directory_with_the_url_to_use(tmp_path):
    with pytest.raises(ReplicaError, match=f"add the database name, e.g. {tmp_path}/my.db"):
        open_replica(f"{tmp_path}/")


def test_open_replica_fails_at_once_on_an_empty_replica(tmp_path):
    (tmp_path / "empty" / "ltx" / "0").mkdir(parents=True)
    with pytest.raises(ReplicaError, match=str(tmp_path / "empty")):
        open_replica(str(tmp_path / "empty"))


def test_select_state_follows_txid_then_time_then_latest(file_replica):
    replica = open_replica(file_replica.url)
    txids = file_replica.litestream_txids()
    middle = txids[len(txids) // 2]
    when = format_time(replica.state(middle).timestamp)
    assert select_state(replica).txid == txids[-1]
    assert select_state(replica, txid="latest").txid == txids[-1]
    assert select_state(replica, time="latest").txid == txids[-1]
    assert select_state(replica, time=when).txid == middle
    assert select_state(replica, time=when, txid=format_txid(txids[0])).txid == txids[0]
    with pytest.raises(OutOfHistory, match=f"{txids[-1] + 500:016x}"):
        select_state(replica, txid=format_txid(txids[-1] + 500))
    with pytest.raises(TimeParseError, match="'someday'"):
        select_state(replica, time="someday")


def test_connections_are_apsw_connections_that_cannot_write(file_replica):
    connection = connect(file_replica.url)
    try:
        assert isinstance(connection, apsw.Connection)
        with pytest.raises(apsw.ReadOnlyError):
            connection.execute("DELETE FROM Genre")
    finally:
        connection.close()
