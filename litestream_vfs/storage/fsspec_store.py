"""Replicas on Google Cloud Storage, Azure Blob Storage and SFTP, through fsspec.

Litestream 0.5.17 writes all three in the file layout, `<path>/ltx/<level>/
<min>-<max>.ltx` with decimal levels (checked against its output), so one
adapter, `FsspecStorage`, serves them all; what differs per scheme is only how
the filesystem is built (`Target`, made by `gs_target` / `abs_target` /
`sftp_target`). The libraries are optional extras, imported when a URL of
their scheme is opened:

- `gs://bucket/path` (extra `gcs`, gcsfs): Google's default credentials
  (GOOGLE_APPLICATION_CREDENTIALS, ...). With STORAGE_EMULATOR_HOST set, that
  emulator is used without credentials, as Litestream's Go client does.
- `abs://account@container/path` (extra `azure`, adlfs): the key from
  LITESTREAM_AZURE_ACCOUNT_KEY, else a SAS token from LITESTREAM_AZURE_SAS_TOKEN
  (Litestream's names), else Azure's default credential chain. Litestream's
  `endpoint` setting is `?endpoint=http://host:port/account` (e.g. Azurite).
- `sftp://user[:password]@host[:port]/path` (extra `sftp`, sshfs): the path
  is absolute on the server, as in Litestream's config. Litestream's
  `key-path` and `host-key` settings are URL options (`?key-path=/k&host-key=
  ssh-ed25519%20AAAA...`; percent-encode `+` as %2B); LITESTREAM_SFTP_PASSWORD
  and LITESTREAM_SFTP_KEY_PATH are conveniences of this package. Without
  `host-key` the server's key is not verified (Litestream's default too).

Only listings and reads are ever issued. A listing counts once in
`counters.lists` however many round trips the library needs for it (one
paginated LIST on gs/abs; a directory walk on sftp).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..distribution import NAME
from ..errors import LitestreamVFSError, ObjectNotFound, ReplicaError, StorageError
from .base import LEVELS, Counters, LtxObject, parse_ltx_name
from .retry import Backoff, retry
from .tree import LTX_LAYOUT, Listed, child_url
from .url import ReplicaLocation

T = TypeVar("T")
log = logging.getLogger(__name__)

AZURE_KEY_ENV = "LITESTREAM_AZURE_ACCOUNT_KEY"
AZURE_SAS_ENV = "LITESTREAM_AZURE_SAS_TOKEN"
SFTP_PASSWORD_ENV = "LITESTREAM_SFTP_PASSWORD"
SFTP_KEY_PATH_ENV = "LITESTREAM_SFTP_KEY_PATH"
GCS_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
#: Our retries for SFTP (asyncssh never retries). gcsfs and the Azure SDK retry
#: inside every call and cannot be told not to, so for them one attempt here
#: keeps a single retry layer.
SFTP_BACKOFF = Backoff()
LIBRARY_RETRIES = Backoff(attempts=1)
_EXTRAS = {"gs": ("gcsfs", "gcs"), "abs": ("adlfs", "azure"), "sftp": ("sshfs", "sftp")}
_DENIED_STATUS = (401, 403)
_AUTH_ERRNOS = (errno.EACCES, errno.EPERM)


@dataclass(frozen=True)
class Target:
    """How to reach one replica: the filesystem, the replica's path in it, its quirks."""

    url: str  # credential-free, for messages
    root: str  # the replica directory in the filesystem's own path syntax, no trailing '/'
    connect: Callable[[], Any]  # -> fsspec filesystem; may connect (sshfs) and so fail
    #: cat_file ignores start/end (sshfs reads the whole file): read a range by seek+read.
    ranges_by_open: bool
    backoff: Backoff
    credential_hint: str
    #: Exception types that mean "try again" besides connection errors and 5xx/429.
    transient: tuple[type[BaseException], ...] = ()
    #: Strings never to show in an error message (passwords, keys).
    secrets: tuple[str, ...] = field(default=(), repr=False)


def _require(scheme: str) -> None:
    """Fail with the pip command when the scheme's optional library is missing."""
    module, extra = _EXTRAS[scheme]
    try:
        __import__(module)
    except ImportError as exc:
        raise ReplicaError(f"{scheme}:// replicas need the {module} package: "
                           f"pip install '{NAME}[{extra}]'") from exc


def _no_password(location: ReplicaLocation, hint: str) -> None:
    if location.password:
        raise ReplicaError(f"replica URL {location}: put credentials in the environment ({hint}), "
                           "not in the URL")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def gs_target(location: ReplicaLocation, environ: Mapping[str, str]) -> Target:
    """gcsfs on the bucket; an emulator named by STORAGE_EMULATOR_HOST is used anonymously."""
    hint = "GOOGLE_APPLICATION_CREDENTIALS or other Google default credentials"
    _no_password(location, hint)
    if location.username:
        raise ReplicaError(f"replica URL {location}: gs:// URLs take no user name")
    _require("gs")
    from gcsfs.core import GCSFileSystem  # the plain JSON-API filesystem: no gRPC bucket probes
    from gcsfs.retry import HttpError
    import aiohttp

    emulator = environ.get(GCS_EMULATOR_ENV)
    options: dict[str, Any] = {"skip_instance_cache": True}
    if emulator:
        options.update(token="anon", endpoint_url=emulator if "://" in emulator else f"http://{emulator}")
    return Target(url=str(location), root=_join(location.host, location.path),
                  connect=lambda: GCSFileSystem(**options), ranges_by_open=False,
                  backoff=LIBRARY_RETRIES, credential_hint=hint,
                  transient=(HttpError, aiohttp.ClientError))


def abs_target(location: ReplicaLocation, environ: Mapping[str, str]) -> Target:
    """adlfs on the container, with Litestream's key / SAS token variables and `endpoint`."""
    hint = f"{AZURE_KEY_ENV} or {AZURE_SAS_ENV}, or Azure default credentials"
    _no_password(location, hint)
    _require("abs")
    from adlfs import AzureBlobFileSystem
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    account = location.username or environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    endpoint = (location.option("endpoint") or "").rstrip("/")
    if not account and not endpoint:
        raise ReplicaError(f"replica URL {location}: name the storage account "
                           "(abs://ACCOUNT@container/path)")
    endpoint = endpoint or f"https://{account}.blob.core.windows.net"
    key, sas = environ.get(AZURE_KEY_ENV), environ.get(AZURE_SAS_ENV)
    options: dict[str, Any] = {"skip_instance_cache": True}
    if sas:  # Litestream prefers a SAS token over a key
        options["connection_string"] = f"BlobEndpoint={endpoint};SharedAccessSignature={sas.lstrip('?')}"
    elif key:
        scheme = urlsplit(endpoint).scheme or "https"
        options["connection_string"] = (f"DefaultEndpointsProtocol={scheme};AccountName={account};"
                                        f"AccountKey={key};BlobEndpoint={endpoint};")
    else:
        options.update(account_name=account, anon=False, account_host=urlsplit(endpoint).netloc)
    shown = f"abs://{account + '@' if location.username else ''}{location.host}/{location.path}"
    query = str(location).partition("?")[2]
    return Target(url=shown + ("?" + query if query else ""),
                  root=_join(location.host, location.path),
                  connect=lambda: AzureBlobFileSystem(**options), ranges_by_open=False,
                  backoff=LIBRARY_RETRIES, credential_hint=hint,
                  transient=(ServiceRequestError, ServiceResponseError),
                  secrets=tuple(s for s in (key, sas) if s))


def sftp_target(location: ReplicaLocation, environ: Mapping[str, str]) -> Target:
    """sshfs to host[:port] as the URL's user, with password and/or key, maybe a pinned host key."""
    if not location.username:
        raise ReplicaError(f"replica URL {location}: an SFTP replica needs a user "
                           "(sftp://user@host/path)")
    _require("sftp")
    import asyncssh
    from sshfs import SSHFileSystem

    split = urlsplit("//" + location.host)
    password = location.password or environ.get(SFTP_PASSWORD_ENV)
    key_path = location.option("key-path") or environ.get(SFTP_KEY_PATH_ENV)
    host_key = location.option("host-key")
    options: dict[str, Any] = {"port": split.port or 22, "username": location.username,
                               "skip_instance_cache": True, "timeout": 10}
    if password:
        options["password"] = password
    if key_path:
        options["client_keys"] = [key_path]
    if host_key:
        try:
            options["known_hosts"] = ([asyncssh.import_public_key(host_key)], [], [])
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ReplicaError(f"replica URL {location}: host-key is not an SSH public key "
                               f"({exc})") from exc
    else:
        log.warning("%s: the SFTP server's host key is not verified (add ?host-key=...)", location)
        options["known_hosts"] = None
    hint = (f"user:password in the URL, {SFTP_PASSWORD_ENV}, or a key via ?key-path= "
            f"or {SFTP_KEY_PATH_ENV}")
    return Target(url=str(location), root="/" + location.path.strip("/"),
                  connect=lambda: SSHFileSystem(split.hostname or location.host, **options),
                  ranges_by_open=True, backoff=SFTP_BACKOFF, credential_hint=hint,
                  transient=(asyncssh.DisconnectError, asyncssh.ChannelOpenError),
                  secrets=(password,) if password else ())


TARGETS: dict[str, Callable[[ReplicaLocation, Mapping[str, str]], Target]] = {
    "gs": gs_target, "abs": abs_target, "sftp": sftp_target}


#: Keys of an fsspec `info` entry that name one version of an object: GCS's generation, the ETag
#: of Azure (adlfs) and of S3-like stores. SFTP gives only a modification time, which names no
#: version (a file put anew in the same second keeps it).
VERSION_KEYS = ("generation", "etag", "ETag")


def version_tag(info: Mapping[str, Any]) -> str:
    """What `LtxObject.tag` records of one listed object ("" where the store says nothing)."""
    return next((str(info[key]) for key in VERSION_KEYS if info.get(key)), "")


def open_fsspec(location: ReplicaLocation, counters: Counters) -> FsspecStorage:
    """The store for a gs://, abs:// or sftp:// location (environment read now)."""
    return FsspecStorage(TARGETS[location.scheme](location, os.environ), counters)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (azure: status_code, gcsfs: code)."""
    for name in ("status_code", "code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


class FsspecStorage:
    """Read-only replica on any fsspec filesystem laid out as `<root>/ltx/<level>/`."""

    layout = LTX_LAYOUT

    def __init__(self, target: Target, counters: Counters | None = None) -> None:
        self.target = target
        self.url = target.url
        self.counters = counters if counters is not None else Counters()
        self._fs: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r})"

    # -- plumbing ------------------------------------------------------------
    def _filesystem(self) -> Any:
        with self._lock:
            if self._fs is None:
                self._fs = self.target.connect()
            return self._fs

    def _forget(self, fs: Any) -> None:
        """Drop a filesystem whose connection failed, so the next attempt reconnects."""
        with self._lock:
            if self._fs is fs:
                self._fs = None

    def _is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, (LitestreamVFSError, FileNotFoundError, PermissionError)):
            return False
        status = _status(exc)
        if status is not None:
            return status >= 500 or status == 429
        return isinstance(exc, (ConnectionError, TimeoutError, *self.target.transient))

    def _call(self, counter: str, what: str, call: Callable[[Any], T]) -> T:
        """One logical request on the filesystem: timed, counted, retried, translated."""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            start = time.perf_counter()
            fs = None
            try:
                fs = self._filesystem()
                return call(fs)
            except Exception as exc:
                if fs is not None and self._is_transient(exc):
                    self._forget(fs)
                raise
            finally:
                self.counters.add(**{counter: 1}, network_seconds=time.perf_counter() - start)

        try:
            return retry(attempt, self._is_transient, self.target.backoff)
        except LitestreamVFSError:
            raise
        except Exception as exc:
            raise self._translate(exc, what, attempts) from exc

    def _translate(self, exc: Exception, what: str, attempts: int) -> Exception:
        """One clear, credential-free error naming the replica or object."""
        reason = str(exc).split("\n")[0] or type(exc).__name__
        for secret in self.target.secrets:
            reason = reason.replace(secret, "***")
        if isinstance(exc, FileNotFoundError):
            return ObjectNotFound(f"{what} not found (removed by compaction?)")
        denied = (isinstance(exc, PermissionError) or _status(exc) in _DENIED_STATUS
                  or (isinstance(exc, OSError) and exc.errno in _AUTH_ERRNOS))
        if denied:
            return StorageError(f"access denied to {what} ({reason}): check credentials "
                                f"({self.target.credential_hint})")
        if self._is_transient(exc):
            plural = "s" if attempts != 1 else ""
            return StorageError(f"cannot read {what}: {type(exc).__name__}: {reason}; "
                                f"gave up after {attempts} attempt{plural}")
        return StorageError(f"cannot read {what}: {type(exc).__name__}: {reason}")

    def _path(self, obj: LtxObject) -> str:
        return f"{self.target.root}/ltx/{obj.level}/{obj.name}"

    def _shown(self, obj: LtxObject) -> str:
        return f"{self.url.partition('?')[0]}/ltx/{obj.level}/{obj.name}"

    # -- the Storage protocol -------------------------------------------------
    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        ltx_dir = f"{self.target.root}/ltx"
        wanted = set(levels)
        objects = []
        for name, size, tag in self._find(ltx_dir):
            level, _, base = name.partition("/")
            txids = parse_ltx_name(base)
            if level.isdigit() and txids is not None and int(level) in wanted:
                objects.append(LtxObject(int(level), txids[0], txids[1], size, tag))
        return sorted(objects)

    def walk(self) -> list[Listed]:
        """Every file below the root (path relative to it, size, version tag): one `find`."""
        return self._find(self.target.root)

    def _find(self, path: str) -> list[Listed]:
        """Every file below `path` (relative name, size, version tag); a missing replica is an
        error, an empty one is not."""
        try:
            found = self._call("lists", self.url, lambda fs: fs.find(path, detail=True))
        except ObjectNotFound as exc:  # the bucket or container itself is missing
            raise ReplicaError(f"no replica at {self.url}: {exc}") from exc
        if not found and not self._call("lists", self.url, lambda fs: fs.isdir(self.target.root)):
            raise ReplicaError(f"no replica at {self.url}: no such directory or prefix")
        base = path.rstrip("/") + "/"
        return [Listed(name.rstrip("/")[len(base):], int(info["size"]), version_tag(info))
                for name, info in found.items() if info.get("type") == "file" and name.startswith(base)]

    def child(self, relative: str) -> FsspecStorage:
        """The replica at `relative` below this directory, on this store's filesystem."""
        target = replace(self.target, url=child_url(self.url, relative),
                         root=self.target.root.rstrip("/") + "/" + relative.strip("/"), connect=self._filesystem)
        return FsspecStorage(target, self.counters)

    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        path, end = self._path(obj), offset + length

        def fetch(fs: Any) -> bytes:
            if self.target.ranges_by_open:
                with fs.open(path, "rb") as handle:
                    handle.seek(offset)
                    return handle.read(length)
            return fs.cat_file(path, start=offset, end=end)

        data = self._call("gets", self._shown(obj), fetch)
        return self._exact(data, obj, offset, length)

    def read_all(self, obj: LtxObject) -> bytes:
        data = self._call("gets", self._shown(obj), lambda fs: fs.cat_file(self._path(obj)))
        return self._exact(data, obj, 0, obj.size)

    def _exact(self, data: bytes, obj: LtxObject, offset: int, length: int) -> bytes:
        """`data` if it is exactly `length` bytes; a short answer means a short file."""
        self.counters.add(bytes_fetched=len(data))
        if len(data) != length:
            state = "truncated" if len(data) < length else "larger than listed"
            raise StorageError(f"{self._shown(obj)} is {state}: wanted {length} bytes at "
                               f"offset {offset}, got {len(data)}")
        return data

    def close(self) -> None:
        """Forget the filesystem; its connections close when it is collected."""
        with self._lock:
            self._fs = None
