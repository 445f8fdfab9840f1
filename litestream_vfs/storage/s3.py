"""A replica in an S3 bucket: keys `<prefix>/<level:04d>/<min>-<max>.ltx`.

That layout is what Litestream 0.5.17 writes (checked against its output).
One paginated ListObjectsV2 without a delimiter lists every level at once, so
a typical replica costs a single LIST request.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import NoCredentialsError, PartialCredentialsError

from ..errors import ObjectNotFound, ReplicaError, StorageError
from .base import LEVELS, Counters, LtxObject, parse_ltx_name
from .retry import retry
from .url import ReplicaLocation

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
#: Attempts per request in botocore's "standard" retry mode (throttling, 5xx).
MAX_ATTEMPTS = 4
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_LEVEL_DIR = re.compile(r"^\d{4}$")
_CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)$")
_ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "TooManyRequests", "ServiceUnavailable", "503"}
_CREDENTIAL_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                    "(or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY)")


@dataclass(frozen=True)
class S3Settings:
    """Everything needed to build the client, derived from URL + environment."""

    bucket: str
    prefix: str
    endpoint_url: str | None  # None: boto3 decides (AWS_ENDPOINT_URL_S3, ...)
    region: str | None  # None: boto3's own chain (AWS_REGION, config file)
    force_path_style: bool
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


def endpoint_url(endpoint: str) -> str:
    """Add the scheme Litestream users leave out: http for loopback, else https."""
    if "://" in endpoint:
        return endpoint.rstrip("/")
    host = urlsplit("//" + endpoint).hostname or ""
    scheme = "http" if host in _LOCAL_HOSTS else "https"
    return f"{scheme}://{endpoint.rstrip('/')}"


def _flag(location: ReplicaLocation, name: str) -> bool | None:
    value = location.option(name)
    if value is None:
        return None
    if value.lower() in ("", "true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ReplicaError(f"replica URL {location}: {name}={value!r} is not true or false")


def s3_settings(location: ReplicaLocation, environ: Mapping[str, str]) -> S3Settings:
    """Resolve endpoint, region, addressing style and alias credentials; no I/O."""
    if location.username or location.password:
        raise ReplicaError(f"replica URL {location}: put S3 credentials in the environment "
                           f"({_CREDENTIAL_HINT}), not in the URL")
    endpoint = location.option("endpoint")
    path_style = _flag(location, "forcePathStyle")
    custom_endpoint = bool(endpoint or environ.get("AWS_ENDPOINT_URL_S3")
                           or environ.get("AWS_ENDPOINT_URL"))
    access_key = secret_key = None
    if not environ.get("AWS_ACCESS_KEY_ID") and environ.get("LITESTREAM_ACCESS_KEY_ID"):
        access_key = environ["LITESTREAM_ACCESS_KEY_ID"]
        secret_key = environ.get("LITESTREAM_SECRET_ACCESS_KEY")
    return S3Settings(
        bucket=location.host,
        prefix=location.path,
        endpoint_url=endpoint_url(endpoint) if endpoint else None,
        region=location.option("region") or (DEFAULT_REGION if endpoint else None),
        # S3-compatible stores behind a custom endpoint rarely resolve
        # bucket subdomains, so path style is the default there.
        force_path_style=path_style if path_style is not None else custom_endpoint,
        access_key_id=access_key,
        secret_access_key=secret_key,
    )


class _ShortRead(Exception):
    """A body ended early or broke off: worth a retry of our own, since
    botocore retries failed requests but not bodies that fail mid-stream."""


def _is_short_read(exc: BaseException) -> bool:
    return isinstance(exc, _ShortRead)


class S3Storage:
    """Read-only S3 replica; one boto3 client shared by all reader threads."""

    def __init__(self, location: ReplicaLocation, counters: Counters | None = None) -> None:
        self.settings = s3_settings(location, os.environ)  # read at open, not import
        self.url = str(location)
        self.counters = counters if counters is not None else Counters()
        config = Config(
            max_pool_connections=32,
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": "path" if self.settings.force_path_style else "auto"},
        )
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.settings.endpoint_url,
            region_name=self.settings.region,
            aws_access_key_id=self.settings.access_key_id,
            aws_secret_access_key=self.settings.secret_access_key,
            config=config,
        )
        self.endpoint = self._client.meta.endpoint_url

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def _key(self, obj: LtxObject) -> str:
        return self._prefix() + f"{obj.level:04d}/{obj.name}"

    def _prefix(self) -> str:
        return self.settings.prefix + "/" if self.settings.prefix else ""

    def _timed(self, counter: str, call: Callable[[], T]) -> T:
        """Run one request, adding it to the counters whether or not it fails."""
        start = time.perf_counter()
        try:
            return call()
        finally:
            self.counters.add(**{counter: 1}, network_seconds=time.perf_counter() - start)

    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        wanted = set(levels)
        prefix = self._prefix()
        request: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": prefix}
        found: list[LtxObject] = []
        try:
            while True:
                page = self._timed("lists", lambda: self._client.list_objects_v2(**request))
                for item in page.get("Contents", ()):
                    obj = _parse_key(item["Key"][len(prefix):], item["Size"])
                    if obj is not None and obj.level in wanted:
                        found.append(obj)
                if not page.get("IsTruncated"):
                    return sorted(found)
                request["ContinuationToken"] = page["NextContinuationToken"]
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, f"s3://{self.settings.bucket}/{prefix}") from exc

    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        key = self._key(obj)
        try:
            return retry(lambda: self._get(key, offset, length), _is_short_read)
        except _ShortRead as exc:
            raise StorageError(f"s3://{self.settings.bucket}/{key}: wanted {length} bytes at "
                               f"offset {offset}, but {exc} (connection kept dropping)") from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, f"s3://{self.settings.bucket}/{key}") from exc

    def _get(self, key: str, offset: int, length: int) -> bytes:
        """One ranged GET; a body that is short for a known reason is final."""
        def fetch() -> tuple[bytes, str]:
            out = self._client.get_object(Bucket=self.settings.bucket, Key=key,
                                          Range=f"bytes={offset}-{offset + length - 1}")
            with out["Body"] as body:
                try:
                    data = body.read()
                except (IncompleteReadError, HTTPClientError) as exc:
                    raise _ShortRead(f"the body broke off ({type(exc).__name__})") from exc
            self.counters.add(bytes_fetched=len(data))
            return data, out.get("ContentRange", "")

        data, content_range = self._timed("gets", fetch)
        if len(data) == length:
            return data
        if not content_range and len(data) >= offset + length:
            return data[offset:offset + length]  # the server ignored Range: sent it all
        total = _CONTENT_RANGE_TOTAL.search(content_range)
        if total and int(total.group(1)) < offset + length:
            raise StorageError(f"s3://{self.settings.bucket}/{key} is truncated: it has "
                               f"{total.group(1)} bytes, wanted {length} at offset {offset}")
        raise _ShortRead(f"the body ended after {len(data)} bytes")

    def read_all(self, obj: LtxObject) -> bytes:
        return self.read_range(obj, 0, obj.size)

    def close(self) -> None:
        self._client.close()

    def _translate(self, exc: Exception, what: str) -> Exception:
        """One clear, credential-free error naming the bucket, key or endpoint."""
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StorageError(f"no S3 credentials for {what}: {_CREDENTIAL_HINT}")
        if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
            return StorageError(f"cannot reach S3 endpoint {self.endpoint} for {what}: "
                                f"{type(exc).__name__}")
        if not isinstance(exc, ClientError):
            return StorageError(f"S3 request for {what} failed: {type(exc).__name__}")
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return ReplicaError(f"no such bucket {self.settings.bucket!r} at {self.endpoint}")
        if code in ("NoSuchKey", "404") or status == 404:
            return ObjectNotFound(f"{what} not found (removed by compaction?)")
        if code in _ACCESS_DENIED or status == 403:
            return StorageError(f"access denied to {what} ({code or status}): check credentials "
                                f"({_CREDENTIAL_HINT}) and bucket permissions")
        if code in _THROTTLED or status in (429, 503):
            return StorageError(f"S3 endpoint {self.endpoint} is throttling requests for {what} "
                                f"({code}); gave up after {MAX_ATTEMPTS} attempts")
        if code == "InvalidRange":
            return StorageError(f"{what} is shorter than the range asked for (truncated?)")
        return StorageError(f"S3 error {code or status} for {what}")


def _parse_key(relative: str, size: int) -> LtxObject | None:
    """`0003/<min>-<max>.ltx` -> LtxObject; anything else (junk, deeper keys) -> None."""
    level_dir, _, name = relative.partition("/")
    if not _LEVEL_DIR.match(level_dir):
        return None
    txids = parse_ltx_name(name)
    if txids is None:
        return None
    return LtxObject(int(level_dir), txids[0], txids[1], size)
