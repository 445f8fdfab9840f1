"""S3 replicas against a real S3 API (moto's server on 127.0.0.1, free port)."""

from __future__ import annotations

import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from litestream_vfs.errors import ObjectNotFound, ReplicaError, StorageError
from litestream_vfs.storage import Counters, LtxObject, open_storage
from litestream_vfs.storage.retry import Backoff
from litestream_vfs.storage.http import IncompleteBody, Response
from litestream_vfs.storage.s3 import MAX_ATTEMPTS

PREFIX = "dbs/chinook.db"
# (level, min, max) of the small replica; contents are derived from the key.
OBJECTS = [(0, 1, 1), (0, 2, 2), (1, 1, 2), (9, 1, 2), (3, 0x10, 0xABC)]
JUNK = ["notes.txt", "0000/readme.md", "0000/0000000000000003-0000000000000003.ltx.tmp",
        "ltx/0/0000000000000001-0000000000000001.ltx",
        "0001/deeper/0000000000000001-0000000000000001.ltx",
        "1/0000000000000001-0000000000000001.ltx"]
PAGED_OBJECTS = 1150  # more than one ListObjectsV2 page (1000 keys)
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
            "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY")


def body(key: str) -> bytes:
    return (key.encode() + b";") * 40


def ltx_key(prefix: str, level: int, lo: int, hi: int) -> str:
    return f"{prefix}/{level:04d}/{lo:016x}-{hi:016x}.ltx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Only the credentials a test sets; no config files, no instance metadata."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def admin_client(endpoint: str, service: str = "s3"):
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def bucket(endpoint):
    """A small replica plus junk keys and an unrelated database's replica."""
    s3 = admin_client(endpoint)
    s3.create_bucket(Bucket="small")
    keys = [ltx_key(PREFIX, *o) for o in OBJECTS] + [f"{PREFIX}/{j}" for j in JUNK]
    keys.append(ltx_key("dbs/other.db", 0, 1, 1))
    keys.append(ltx_key("dbs/chinook.db-old", 0, 1, 1))
    for key in keys:
        s3.put_object(Bucket="small", Key=key, Body=body(key))
    return "small"


@pytest.fixture(scope="module")
def paged_bucket(endpoint):
    s3 = admin_client(endpoint)
    s3.create_bucket(Bucket="paged")
    keys = [ltx_key("big.db", i % 3, i, i) for i in range(1, PAGED_OBJECTS + 1)]
    keys += [f"big.db/0000/junk-{i}" for i in range(40)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="paged", Key=k, Body=b"x" * 7), keys))
    return "paged"


def url(endpoint: str, bucket: str, path: str = PREFIX, style: str = "forcePathStyle=true") -> str:
    return f"s3://{bucket}/{path}?endpoint={endpoint}&{style}"


def expected_small(levels=range(10)) -> list[LtxObject]:
    return sorted(LtxObject(level, lo, hi, len(body(ltx_key(PREFIX, level, lo, hi))))
                  for level, lo, hi in OBJECTS if level in levels)


def test_one_list_request_covers_every_level(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    assert storage.list_files() == expected_small()
    assert storage.list_files((0, 9)) == expected_small((0, 9))
    assert storage.counters.lists == 2


def test_pagination(endpoint, paged_bucket):
    counters = Counters()
    storage = open_storage(url(endpoint, paged_bucket, "big.db"), counters=counters)
    found = storage.list_files()
    wanted = sorted((i % 3, i) for i in range(1, PAGED_OBJECTS + 1))
    assert [(o.level, o.min_txid) for o in found] == wanted
    total_keys = PAGED_OBJECTS + 40
    assert counters.lists == -(-total_keys // 1000)
    assert counters.gets == 0


@pytest.mark.parametrize("style", ["forcePathStyle=true", "force-path-style=true", "region=us-east-1"])
def test_range_reads_and_counters(endpoint, bucket, style):
    counters = Counters()
    storage = open_storage(url(endpoint, bucket, style=style), counters=counters)
    objects = storage.list_files()
    for obj in objects:
        data = body(ltx_key(PREFIX, obj.level, obj.min_txid, obj.max_txid))
        assert storage.read_all(obj) == data
        assert storage.read_range(obj, 5, 17) == data[5:22]
        assert storage.read_range(obj, obj.size - 1, 1) == data[-1:]
    assert counters.gets == 3 * len(objects)
    assert counters.bytes_fetched == sum(o.size + 17 + 1 for o in objects)
    assert counters.lists == 1
    storage.close()


def test_directory_of_replicas(endpoint, bucket):
    storage = open_storage(f"s3://{bucket}/dbs/?endpoint={endpoint}", db_name="/local/chinook.db")
    assert storage.list_files() == expected_small()
    assert storage.url == f"s3://{bucket}/{PREFIX}?endpoint={endpoint}"


def test_endpoint_from_aws_endpoint_url_env(endpoint, bucket, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    storage = open_storage(f"s3://{bucket}/{PREFIX}")
    assert storage.list_files() == expected_small()


def test_truncated_object_is_a_storage_error_without_retries(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    real = storage.list_files((1,))[0]
    claimed = LtxObject(real.level, real.min_txid, real.max_txid, real.size + 100)
    key = ltx_key(PREFIX, real.level, real.min_txid, real.max_txid)
    with pytest.raises(StorageError, match=f"{key} is truncated"):
        storage.read_all(claimed)
    assert storage.counters.gets == 1


class Rewriting:
    """Wraps a store's transport so a test can change (or replace) what comes back."""

    def __init__(self, storage, change) -> None:
        self.inner, self.change, self.calls = storage.transport, change, 0
        storage.transport = self

    def request(self, method, endpoint, target, headers) -> Response:
        self.calls += 1
        return self.change(lambda: self.inner.request(method, endpoint, target, headers))

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("announced", ["cut length", "full length"])
def test_transient_short_read_is_retried(endpoint, bucket, announced):
    """A body that ends early (or breaks off before its Content-Length) is re-fetched."""
    storage = open_storage(url(endpoint, bucket))
    obj = storage.list_files((0,))[0]
    cuts = []

    def cut_body_once(send):
        response = send()
        if cuts:
            return response
        cuts.append(len(response.body))
        if announced == "full length":
            raise IncompleteBody(3, len(response.body))
        return response._replace(body=response.body[:3])

    Rewriting(storage, cut_body_once)
    assert storage.read_all(obj) == body(ltx_key(PREFIX, obj.level, obj.min_txid, obj.max_txid))
    assert cuts == [obj.size]
    assert storage.counters.gets == 2


def test_server_that_ignores_range_still_gives_the_range(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    obj = storage.list_files((0,))[0]
    data = body(ltx_key(PREFIX, obj.level, obj.min_txid, obj.max_txid))

    def send_whole_object(send):
        response = send()
        headers = {k: v for k, v in response.headers.items() if k != "content-range"}
        return Response(200, headers, data)

    Rewriting(storage, send_whole_object)
    assert storage.read_range(obj, 10, 20) == data[10:30]
    assert storage.counters.gets == 1


def test_persistent_short_reads_give_up(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    obj = storage.list_files((0,))[0]
    Rewriting(storage, lambda send: send()._replace(body=b"abc"))
    key = ltx_key(PREFIX, obj.level, obj.min_txid, obj.max_txid)
    with pytest.raises(StorageError, match=f"{key}: wanted {obj.size} bytes .* ended after 3 bytes"):
        storage.read_all(obj)
    assert storage.counters.gets == Backoff().attempts


def test_missing_object_is_object_not_found(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    ghost = LtxObject(0, 7, 7, 100)
    with pytest.raises(ObjectNotFound, match=ltx_key(PREFIX, 0, 7, 7)):
        storage.read_range(ghost, 0, 10)


def test_missing_bucket_is_a_replica_error(endpoint):
    with pytest.raises(ReplicaError, match="no such bucket 'nonexistent'"):
        open_storage(url(endpoint, "nonexistent")).list_files()


def test_empty_prefix_lists_nothing(endpoint, bucket):
    assert open_storage(url(endpoint, bucket, "no/such/db")).list_files() == []


SLOW_DOWN = Response(503, {}, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                             b"</Message></Error>")


def test_throttling_is_retried(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    obj = storage.list_files((9,))[0]
    throttled = []

    def throttle_twice(send):
        if len(throttled) < 2:
            throttled.append(1)
            return SLOW_DOWN
        return send()

    Rewriting(storage, throttle_twice)
    assert storage.read_range(obj, 0, 4) == body(ltx_key(PREFIX, 9, obj.min_txid, obj.max_txid))[:4]
    assert len(throttled) == 2


def test_throttling_gives_up_after_bounded_attempts(endpoint, bucket):
    storage = open_storage(url(endpoint, bucket))
    obj = storage.list_files((9,))[0]
    throttling = Rewriting(storage, lambda send: SLOW_DOWN)
    with pytest.raises(StorageError, match="throttling"):
        storage.read_range(obj, 0, 4)
    assert throttling.calls == MAX_ATTEMPTS


def test_connection_refused_names_the_endpoint():
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageError, match=f"cannot reach S3 endpoint {dead}"):
        open_storage(url(dead, "b")).list_files()


def test_no_credentials_names_the_variables(endpoint, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="LITESTREAM_ACCESS_KEY_ID"):
        open_storage(url(endpoint, bucket)).list_files()


@pytest.fixture
def iam_keys(endpoint, bucket):
    """A user allowed to read S3, then moto enforces authentication."""
    iam = admin_client(endpoint, "iam")
    name = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = iam.create_policy(PolicyName=name, PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
    iam.attach_user_policy(UserName=name, PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName=name)["AccessKey"]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    yield key["AccessKeyId"], key["SecretAccessKey"]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


def test_litestream_env_aliases(endpoint, bucket, iam_keys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("LITESTREAM_ACCESS_KEY_ID", iam_keys[0])
    monkeypatch.setenv("LITESTREAM_SECRET_ACCESS_KEY", iam_keys[1])
    assert open_storage(url(endpoint, bucket)).list_files() == expected_small()


def test_aws_variables_win_over_aliases(endpoint, bucket, iam_keys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_keys[1])
    monkeypatch.setenv("LITESTREAM_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
    monkeypatch.setenv("LITESTREAM_SECRET_ACCESS_KEY", "wrong")
    assert open_storage(url(endpoint, bucket)).list_files() == expected_small()


@pytest.mark.parametrize("access_key, secret", [
    ("AKIAUNKNOWNUNKNOWN00", "not-the-secret-9876"),  # unknown key id
    (None, "not-the-secret-9876"),  # right key id, wrong secret
])
def test_bad_credentials(endpoint, bucket, iam_keys, monkeypatch, access_key, secret):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key or iam_keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    storage = open_storage(url(endpoint, bucket))
    with pytest.raises(StorageError, match="access denied .* check credentials") as info:
        storage.list_files()
    assert secret not in str(info.value) and secret not in storage.url + repr(storage)
    with pytest.raises(StorageError, match="access denied"):
        storage.read_range(LtxObject(0, 1, 1, 10), 0, 10)
