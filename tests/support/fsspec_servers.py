"""Real loopback servers for gs://, abs:// and sftp:// replicas, and real Litestream writing to them.

- SFTP: an asyncssh SFTP server in this process (its own event-loop thread),
  chrooted to a temporary directory, password auth for one user.
- Azure Blob: Azurite (npm package `azurite`, installed once into the test
  cache with `npm install`), in memory, telemetry off.
- GCS: gcp-storage-emulator (PyPI), in memory, with one bucket.

Each `Server` says how Litestream is configured for it (replica URL,
top-level config settings, environment), what URL our package is given, and
lists the replica's files with the storage library itself (not our adapter),
as the ground truth a test compares against.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import quote

from litestream_vfs.storage.base import LtxObject, parse_ltx_name

from .binaries import cache_dir
from .replicas import child_env, replicate_config, replicate_steps
from .seaweed import stop_process_group
from .workload import Step, prepare_database

AZURITE_VERSION = "3.35.0"
#: Azurite's well-known development account and key (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SFTP_USER = "litestream"
SFTP_PASSWORD = "s3cr:t/p@ss"  # needs percent-encoding in a URL
BUCKET = "litestream"
_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Server:
    """A running store: how Litestream and our package reach it, and its ground truth."""

    scheme: str
    #: Replica URL for `path` as Litestream's config takes it (may hold credentials).
    litestream_url: Callable[[str], str]
    #: The same replica as our package is given it.
    url: Callable[[str], str]
    #: Environment both Litestream and our package need (keys, emulator host).
    env: Mapping[str, str]
    #: Top-level Litestream config settings (e.g. Azurite's endpoint).
    settings: Mapping[str, str]
    #: path -> {relative name under the replica: bytes} straight from the store.
    contents: Callable[[str], dict[str, bytes]]
    #: (path, relative name, bytes): put an object anew through the store's own client, as a writer would.
    write: Callable[[str, str, bytes], None]
    details: Mapping[str, object] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ltx_objects(contents: Mapping[str, bytes]) -> list[LtxObject]:
    """LTX files among `ltx/<level>/<name>` entries."""
    found = []
    for name, data in contents.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "ltx" and parts[1].isdigit():
            span = parse_ltx_name(parts[2])
            if span is not None:
                found.append(LtxObject(int(parts[1]), span[0], span[1], len(data)))
    return sorted(found)


# -- SFTP --------------------------------------------------------------------------
@contextmanager
def running_sftp(root: Path, password: str = SFTP_PASSWORD) -> Iterator[Server]:
    """An asyncssh SFTP server chrooted to `root` on a free loopback port."""
    import asyncssh

    root.mkdir(parents=True, exist_ok=True)

    connections: set[asyncssh.SSHServerConnection] = set()

    class Auth(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            connections.add(conn)

        def connection_lost(self, exc: Exception | None) -> None:
            connections.difference_update([c for c in connections if c.is_closed()])

        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, given: str) -> bool:
            return username == SFTP_USER and given == password

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftp-server", daemon=True)
    thread.start()
    host_key = asyncssh.generate_private_key("ssh-ed25519")

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            Auth, "127.0.0.1", 0, server_host_keys=[host_key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()))

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    port = acceptor.sockets[0].getsockname()[1]

    def url(path: str, secret: str | None = password) -> str:
        auth = SFTP_USER + (f":{quote(secret, safe='')}" if secret is not None else "")
        return f"sftp://{auth}@127.0.0.1:{port}/{path.strip('/')}"

    def contents(path: str) -> dict[str, bytes]:
        base = root / path.strip("/")
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}

    def write(path: str, name: str, data: bytes) -> None:
        target = root / path.strip("/") / name
        target.unlink(missing_ok=True)
        target.write_bytes(data)

    try:
        yield Server("sftp", url, url, {}, {}, contents, write,
                     {"root": root, "port": port,
                      "host_key": host_key.export_public_key().decode().strip()})
    finally:
        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()
            for conn in list(connections):  # clients our tests left open
                conn.close()
                await conn.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# -- Azurite -------------------------------------------------------------------------
def azurite_binary() -> Path:
    """`azurite-blob` from the npm registry, installed once per machine (file-locked)."""
    target = cache_dir() / f"azurite-{AZURITE_VERSION}"
    script = target / "node_modules" / ".bin" / "azurite-blob"
    with open(cache_dir() / "azurite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is needed to install Azurite for the abs:// tests")
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(target),
                            f"azurite@{AZURITE_VERSION}"], check=True, capture_output=True,
                           timeout=600, stdin=subprocess.DEVNULL)
    return script


def _wait_for_log(proc: subprocess.Popen, log_path: Path, marker: str, what: str) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while marker not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process_group(proc)
            raise RuntimeError(f"{what} did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


@contextmanager
def running_azurite(workdir: Path) -> Iterator[Server]:
    """Azurite's blob service on a free port with one container, `BUCKET`."""
    from azure.storage.blob import BlobServiceClient

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "azurite.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(azurite_binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=workdir)
    try:
        _wait_for_log(proc, log_path, "successfully listens", "Azurite")
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        service = BlobServiceClient(endpoint, credential={"account_name": AZURITE_ACCOUNT,
                                                          "account_key": AZURITE_KEY})
        container = service.create_container(BUCKET)

        def contents(path: str) -> dict[str, bytes]:
            prefix = path.strip("/") + "/"
            return {blob.name[len(prefix):]: container.download_blob(blob.name).readall()
                    for blob in container.list_blobs(name_starts_with=prefix)}

        yield Server(
            "abs",
            litestream_url=lambda path: f"abs://{AZURITE_ACCOUNT}@{BUCKET}/{path.strip('/')}",
            url=lambda path: (f"abs://{AZURITE_ACCOUNT}@{BUCKET}/{path.strip('/')}"
                              f"?endpoint={quote(endpoint, safe='')}"),
            env={"LITESTREAM_AZURE_ACCOUNT_KEY": AZURITE_KEY},
            settings={"endpoint": f'"{endpoint}"'},
            contents=contents, details={"endpoint": endpoint, "port": port},
            write=lambda path, name, data: container.upload_blob(f"{path.strip('/')}/{name}", data,
                                                                 overwrite=True))
    finally:
        stop_process_group(proc)


# -- GCS emulator --------------------------------------------------------------------
@contextmanager
def running_gcs_emulator(workdir: Path) -> Iterator[Server]:
    """gcp-storage-emulator, in memory, with one bucket, `BUCKET`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "gcs.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
             "--port", str(port), "--in-memory", "--default-bucket", BUCKET],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=workdir)
    try:
        _wait_for_log(proc, log_path, "All services started", "gcp-storage-emulator")
        host = f"http://127.0.0.1:{port}"
        from gcsfs.core import GCSFileSystem

        fs = GCSFileSystem(token="anon", endpoint_url=host, skip_instance_cache=True)

        def contents(path: str) -> dict[str, bytes]:
            prefix = f"{BUCKET}/{path.strip('/')}/"
            fs.invalidate_cache()
            return {name[len(prefix):]: fs.cat_file(name) for name in fs.find(prefix)}

        url = lambda path: f"gs://{BUCKET}/{path.strip('/')}"  # noqa: E731 - same form for both

        def write(path: str, name: str, data: bytes) -> None:
            fs.pipe(f"{BUCKET}/{path.strip('/')}/{name}", data)

        yield Server("gs", url, url, {"STORAGE_EMULATOR_HOST": host}, {}, contents, write,
                     {"host": host, "port": port})
    finally:
        stop_process_group(proc)


# -- replicas written by real Litestream ------------------------------------------------
@dataclass(frozen=True)
class StoreReplica:
    """A replica Litestream wrote to `server` at `path`, and how to restore it with Litestream."""

    server: Server
    path: str
    db_path: Path
    config: Path
    binary: Path
    step_txids: tuple[tuple[str, int], ...]

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    def contents(self) -> dict[str, bytes]:
        return self.server.contents(self.path)

    def ltx_files(self) -> list[LtxObject]:
        return ltx_objects(self.contents())

    def litestream_restore(self, out: Path, txid: int) -> None:
        """`litestream restore -config ... -txid X` (the config carries endpoints and URLs)."""
        result = subprocess.run(
            [str(self.binary), "restore", "-config", str(self.config), "-o", str(out),
             "-txid", f"{txid:016x}", str(self.db_path)],
            env=child_env(dict(self.server.env)), capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"litestream restore from {self.server.scheme} (txid {txid:016x}) "
                               f"failed: {result.stderr[-2000:]}")


def replicate_to(server: Server, path: str, workdir: Path, steps: Sequence[Step],
                 binary: Path, settings: Mapping[str, str] = MappingProxyType({})) -> StoreReplica:
    """Run real `litestream replicate` to `server` while `steps` commit, one shipped L0 file each."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "chinook.db"
    prepare_database(db_path)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, server.litestream_url(path),
                                       {**server.settings, **settings}))

    def newest(level: int) -> int:
        return max((o.max_txid for o in ltx_objects(server.contents(path)) if o.level == level),
                   default=0)

    landed = replicate_steps(binary, config, dict(server.env), newest, db_path, steps, server.scheme)
    return StoreReplica(server, path.strip("/"), db_path, config, binary, tuple(landed))
