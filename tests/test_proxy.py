"""The test proxy against a real, signature-checking S3 server (moto, IAM auth on)."""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from support.proxy import FaultPlan, Proxy, RequestRecord, classify, count_waves

BUCKET = "proxy-test"
BODY = bytes(range(256)) * 64  # 16 KiB, every byte position distinguishable
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@dataclass(frozen=True)
class S3Server:
    url: str
    access_key: str
    secret_key: str

    def client(self, endpoint: str, *, secret: str | None = None, **config: object) -> object:
        return boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            config=Config(s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1, "mode": "standard"}, **config))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto in a child process with request authentication enforced after the
    three IAM calls that create a user, its policy and its key."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server on {url} did not start") from None
                time.sleep(0.05)
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="tester")
        iam.put_user_policy(UserName="tester", PolicyName="all", PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName="tester")["AccessKey"]
        server = S3Server(url, key["AccessKeyId"], key["SecretAccessKey"])
        direct = server.client(url)
        direct.create_bucket(Bucket=BUCKET)
        direct.put_object(Bucket=BUCKET, Key="data/object", Body=BODY)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[Proxy]:
    with Proxy(s3.url) as running:
        yield running


def _raw_get(proxy: Proxy, path: str) -> tuple[int, bytes]:
    """An unsigned GET on a fresh connection (moto answers 403 with an XML body)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_signed_requests_pass_through_and_are_counted(s3: S3Server, proxy: Proxy) -> None:
    client = s3.client(proxy.url)
    operations = {
        "PUT": lambda: client.put_object(Bucket=BUCKET, Key="data/new", Body=b"x" * 1000),
        "GET": lambda: client.get_object(Bucket=BUCKET, Key="data/new")["Body"].read(),
        "HEAD": lambda: client.head_object(Bucket=BUCKET, Key="data/object"),
        "LIST": lambda: client.list_objects_v2(Bucket=BUCKET, Prefix="data/"),
        "DELETE": lambda: client.delete_object(Bucket=BUCKET, Key="data/new"),
    }
    for run in operations.values():
        run()
    assert proxy.counts() == {kind: 1 for kind in operations}
    assert all(r.status is not None and r.status < 300 for r in proxy.records())


def test_wrong_signature_is_still_rejected_through_the_proxy(s3: S3Server, proxy: Proxy) -> None:
    """Control: the upstream really checks signatures, so the test above means something."""
    forged = s3.client(proxy.url, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as failure:
        forged.head_object(Bucket=BUCKET, Key="data/object")
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("first,last", [(0, 0), (100, 4195), (len(BODY) - 7, len(BODY) - 1)])
def test_ranged_get(s3: S3Server, proxy: Proxy, first: int, last: int) -> None:
    got = s3.client(proxy.url).get_object(
        Bucket=BUCKET, Key="data/object", Range=f"bytes={first}-{last}")["Body"].read()
    assert got == BODY[first:last + 1]
    [record] = proxy.records()
    assert (record.kind, record.status, record.response_bytes) == ("GET", 206, len(got))


def test_latency_is_applied_per_request_and_changeable(s3: S3Server, proxy: Proxy) -> None:
    client = s3.client(proxy.url)
    for latency in (0.05, 0.0):
        proxy.latency = latency
        client.head_object(Bucket=BUCKET, Key="data/object")
    assert [r.held for r in proxy.records()] == [0.05, 0.0]


def test_sequential_requests_are_one_wave_each(s3: S3Server, proxy: Proxy) -> None:
    client = s3.client(proxy.url)
    for _ in range(3):
        client.head_object(Bucket=BUCKET, Key="data/object")
    assert proxy.sequential_round_trips() == 3
    assert proxy.max_concurrency_seen == 1


def test_concurrent_requests_share_a_wave(s3: S3Server, proxy: Proxy) -> None:
    """Threads wait at a barrier, then each request is held a full second, so
    all of them are in flight together."""
    client = s3.client(proxy.url, max_pool_connections=4)
    proxy.latency = 1.0
    barrier = threading.Barrier(4)

    def head() -> None:
        barrier.wait()
        client.head_object(Bucket=BUCKET, Key="data/object")

    threads = [threading.Thread(target=head) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert proxy.max_concurrency_seen == 4
    assert proxy.sequential_round_trips() == 1


def test_count_waves_definition() -> None:
    def rec(start: float, end: float) -> RequestRecord:
        return RequestRecord("GET", "/b/k", "", "GET", 200, 0, start, end, 0.0, None)
    chain = [rec(0, 2), rec(1, 3), rec(2.5, 4)]          # overlapping chain: one wave
    touching = [rec(4, 5)]                               # starts as the chain ends: new wave
    later = [rec(6, 7), rec(6.5, 6.6)]                   # one more wave
    assert count_waves(list(reversed(chain + touching + later))) == 3
    assert count_waves([]) == 0


@pytest.mark.parametrize("method,path,query,kind", [
    ("GET", "/bucket", "list-type=2&prefix=db%2F0000%2F", "LIST"),
    ("GET", "/bucket/", "", "LIST"),
    ("GET", "/bucket/db/0000/a.ltx", "", "GET"),
    ("GET", "/bucket/db/0000/a.ltx", "x-id=GetObject", "GET"),
    ("head", "/bucket/k", "", "HEAD"),
    ("PROPFIND", "/dav/db/ltx/0/", "", "PROPFIND"),
    ("PATCH", "/bucket/k", "", "OTHER"),
])
def test_classify(method: str, path: str, query: str, kind: str) -> None:
    assert classify(method, path, query) == kind


@pytest.mark.parametrize("status,code", [(503, "SlowDown"), (500, "InternalError")])
def test_status_fault(s3: S3Server, proxy: Proxy, status: int, code: str) -> None:
    proxy.set_fault(FaultPlan("status", 1.0, status=status))
    with pytest.raises(botocore.exceptions.ClientError) as failure:
        s3.client(proxy.url).get_object(Bucket=BUCKET, Key="data/object")
    assert failure.value.response["Error"]["Code"] == code
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    [record] = proxy.records()
    assert (record.fault, record.status) == ("status", status)


def test_reset_fault(proxy: Proxy) -> None:
    proxy.set_fault(FaultPlan("reset", 1.0))
    with pytest.raises(ConnectionResetError):  # includes http.client.RemoteDisconnected
        _raw_get(proxy, f"/{BUCKET}/data/object")
    [record] = proxy.records()
    assert (record.fault, record.status, record.response_bytes) == ("reset", None, 0)


def test_truncate_fault(s3: S3Server, proxy: Proxy) -> None:
    proxy.set_fault(FaultPlan("truncate", 1.0))
    response = s3.client(proxy.url).get_object(Bucket=BUCKET, Key="data/object")
    assert response["ContentLength"] == len(BODY)
    with pytest.raises((botocore.exceptions.IncompleteReadError,
                        botocore.exceptions.ResponseStreamingError)):
        response["Body"].read()
    [record] = proxy.records()
    assert (record.fault, record.status, record.response_bytes) == ("truncate", 200, len(BODY) // 2)


def test_drop_fault_until_client_times_out(s3: S3Server, proxy: Proxy) -> None:
    proxy.set_fault(FaultPlan("drop", 1.0, max_hold=30))
    client = s3.client(proxy.url, read_timeout=0.5, connect_timeout=5)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.head_object(Bucket=BUCKET, Key="data/object")
    proxy.stop()  # returns although the client's socket may still be open
    [record] = proxy.records()
    assert (record.fault, record.status) == ("drop", None)


def test_drop_fault_bounded_by_max_hold(proxy: Proxy) -> None:
    proxy.set_fault(FaultPlan("drop", 1.0, max_hold=0.2))
    with pytest.raises(ConnectionResetError):  # closed without a response
        _raw_get(proxy, f"/{BUCKET}/data/object")
    [record] = proxy.records()
    assert (record.fault, record.status) == ("drop", None)


def test_delay_fault_adds_to_latency(s3: S3Server, proxy: Proxy) -> None:
    proxy.latency = 0.01
    proxy.set_fault(FaultPlan("delay", 1.0, delay=0.05))
    client = s3.client(proxy.url)
    assert client.get_object(Bucket=BUCKET, Key="data/object")["Body"].read() == BODY
    [record] = proxy.records()
    assert (record.fault, record.held) == ("delay", 0.01 + 0.05)


def test_fault_limited_to_chosen_kinds(s3: S3Server, proxy: Proxy) -> None:
    proxy.set_fault(FaultPlan("status", 1.0, kinds=frozenset({"GET"})))
    client = s3.client(proxy.url)
    client.list_objects_v2(Bucket=BUCKET, Prefix="data/")
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_object(Bucket=BUCKET, Key="data/object")
    assert [(r.kind, r.fault) for r in proxy.records()] == [("LIST", None), ("GET", "status")]


def test_seeded_fault_fraction_is_reproducible(proxy: Proxy) -> None:
    plan = FaultPlan("status", 0.3, seed=7)
    rng = random.Random(plan.seed)
    expected = [i for i in range(40) if rng.random() < plan.fraction]
    for _ in range(2):
        proxy.set_fault(plan)  # re-setting reseeds
        proxy.reset()
        statuses = [_raw_get(proxy, f"/{BUCKET}/data/object")[0] for _ in range(40)]
        assert [i for i, s in enumerate(statuses) if s == plan.status] == expected
        assert [i for i, r in enumerate(proxy.records()) if r.fault] == expected


def test_stop_closes_idle_keep_alive_connections_and_joins(s3: S3Server) -> None:
    with Proxy(s3.url) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        conn.request("GET", f"/{BUCKET}/data/object")
        conn.getresponse().read()  # the connection stays open (keep-alive)
        port = running.port
    conn.close()
    assert not [t for t in threading.enumerate() if "process_request_thread" in t.name]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
