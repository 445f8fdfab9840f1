"""A replica in an S3 bucket: keys `<prefix>/<level:04d>/<min>-<max>.ltx`.

That layout is what Litestream 0.5.17 writes (checked against its output).
One paginated ListObjectsV2 without a delimiter lists every level at once, so
a typical replica costs a single LIST request.

Requests are signed here (sigv4.py) and sent over keep-alive connections
(http.py); `aws.resolve` picks endpoint, region and keys as boto3 would, and
loads boto3 only when the URL and environment do not settle them (see the
"Cold start" section of benchmarks/REPORT.md for why).

Faults: there is one retry layer. Every request (a ranged GET, a LIST page)
goes through `retry.retry` with `BACKOFF`: up to 5 attempts, full-jitter
backoff of at most 0.1/0.2/0.4/0.8 s, and no new attempt after 30 s. Transient
faults (5xx, 429/SlowDown, connection resets and refusals, timeouts, bodies
that end early) are retried; permanent ones (403, 404, other 4xx, a truncated
object) fail at once. Timeouts: 3 s to connect, 10 s of silence on a socket
read, so a dropped request costs at most 10 s and a read in trouble gives up
within about 30 + 13 s, naming the object.
"""

from __future__ import annotations

import copy
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import urlsplit
from xml.etree import ElementTree

from ..errors import ObjectNotFound, ReplicaError, StorageError
from .aws import CREDENTIAL_HINT, DEFAULT_REGION, NoCredentials, Target, aws_endpoint, resolve
from .base import LEVELS, Counters, LtxObject, parse_ltx_name
from .http import IncompleteBody, Response, Timeouts, Transport
from .retry import Backoff, retry
from .sigv4 import Signer, canonical_query, encode_path
from .tree import S3_LAYOUT, Listed, child_url
from .url import ReplicaLocation

T = TypeVar("T")

#: Retry policy for every request (read at each request, so tests may swap it).
BACKOFF = Backoff(attempts=5, base_seconds=0.1, max_seconds=3.0, deadline_seconds=30.0)
MAX_ATTEMPTS = BACKOFF.attempts
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_LEVEL_DIR = re.compile(r"\d{4}")
_CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)\Z")
_ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "TooManyRequests", "ServiceUnavailable", "503"}
_TRANSIENT_CODES = _THROTTLED | {"InternalError", "RequestTimeout"}
_CREDENTIAL_HINT = CREDENTIAL_HINT
#: Faults of the transport: nothing (or not all) came back; worth another attempt.
_NETWORK_FAULTS = (OSError,)

#: Read when a store is opened (tests of dropped requests shorten them).
TIMEOUTS = Timeouts()


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
    """A body ended early or broke off before its announced length: worth a retry."""


class S3Error(Exception):
    """A response other than 2xx: its status, S3 error code and headers."""

    def __init__(self, status: int, code: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.headers = status, code, headers


def _is_transient(exc: BaseException) -> bool:
    """Faults that another attempt may not meet: network, timeouts, 5xx, throttling."""
    if isinstance(exc, (_ShortRead, *_NETWORK_FAULTS)):
        return True
    if isinstance(exc, S3Error):
        if exc.status in (401, 403, 404):
            return False  # whatever the code says: permissions and absence do not heal
        return exc.status >= 500 or exc.status == 429 or exc.code in _TRANSIENT_CODES
    return False


@dataclass
class _Attempts:
    """How one logical request went, for the error that ends it."""

    count: int = 0
    began: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        plural = "s" if self.count != 1 else ""
        return f"gave up after {self.count} attempt{plural} in {time.monotonic() - self.began:.1f}s"


class S3Storage:
    """Read-only S3 replica; one signer and one connection per reader thread."""

    layout = S3_LAYOUT

    def __init__(self, location: ReplicaLocation, counters: Counters | None = None) -> None:
        self.settings = s3_settings(location, os.environ)  # read at open, not import
        _check_prefix(self.settings.prefix, location)
        self.url = str(location)
        self.counters = counters if counters is not None else Counters()
        self._target, self._credentials = resolve(self.settings, os.environ)
        self._signer = Signer(self._target.region)
        #: The seam every request goes through (tests wrap it to cut bodies or throttle).
        self.transport = Transport(TIMEOUTS, self._target.ca_bundle)
        self.endpoint = self._target.endpoint
        self._owns_transport = True

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def _key(self, obj: LtxObject) -> str:
        return self._prefix() + f"{obj.level:04d}/{obj.name}"

    def _prefix(self) -> str:
        return self.settings.prefix + "/" if self.settings.prefix else ""

    def _request(self, counter: str, call: Callable[[], T], attempts: _Attempts) -> T:
        """One logical request: each attempt counted and timed, transient faults retried."""
        def attempt() -> T:
            attempts.count += 1
            start = time.perf_counter()
            try:
                return call()
            finally:
                self.counters.add(**{counter: 1}, network_seconds=time.perf_counter() - start)

        return retry(attempt, _is_transient, BACKOFF)

    def _send(self, key: str, query: dict[str, str], headers: dict[str, str]) -> Response:
        """One signed GET of `key` in the bucket (a 2xx response, else S3Error)."""
        for redirected in (False, True):
            endpoint, root = self._target.for_bucket(self.settings.bucket)
            path = root + key
            signed = self._signer.headers("GET", urlsplit(endpoint).netloc, path, canonical_query(query),
                                          self._credentials(), headers)
            target = encode_path(path) + ("?" + canonical_query(query) if query else "")
            response = self.transport.request("GET", endpoint, target, signed)
            if 200 <= response.status < 300:
                return response
            error = S3Error(response.status, _error_code(response), response.headers)
            if redirected or not self._follow_region(error):
                raise error
        raise AssertionError("unreachable")

    def _follow_region(self, error: S3Error) -> bool:
        """Like boto3: a bucket in another region than assumed answers 301/400 naming its region."""
        region = error.headers.get("x-amz-bucket-region")
        if self._target.custom or error.status not in (301, 400) or not region or region == self._target.region:
            return False
        self._target = Target(aws_endpoint(region), region, self._target.path_style, False, self._target.ca_bundle)
        self._signer = Signer(region)
        self.endpoint = self._target.endpoint
        return True

    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        wanted = set(levels)
        parsed = (_parse_key(*listed) for listed in self.walk())
        return sorted(obj for obj in parsed if obj is not None and obj.level in wanted)

    def walk(self) -> list[Listed]:
        """Every object under the prefix (key relative to it, size, ETag): one paginated ListObjectsV2."""
        prefix = self._prefix()
        query = {"list-type": "2", "prefix": prefix}
        found: list[Listed] = []
        attempts = _Attempts()
        try:
            while True:
                page = self._request("lists", lambda: _parse_listing(self._send("", query, {}).body), attempts)
                found.extend(Listed(key[len(prefix):], size, etag) for key, size, etag in page.contents)
                if not page.next_token:
                    return found
                query["continuation-token"] = page.next_token
        except (S3Error, NoCredentials, *_NETWORK_FAULTS) as exc:
            raise self._translate(exc, f"s3://{self.settings.bucket}/{prefix}", attempts) from exc

    def child(self, relative: str) -> S3Storage:
        """The replica at `relative` under this prefix, on this store's connections (which it never closes)."""
        twin = copy.copy(self)
        twin.settings = replace(self.settings, prefix="/".join(
            part for part in (self.settings.prefix, relative.strip("/")) if part))
        twin.url = child_url(self.url, relative)
        twin._owns_transport = False
        return twin

    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        key = self._key(obj)
        attempts = _Attempts()
        try:
            return self._request("gets", lambda: self._get(key, offset, length), attempts)
        except _ShortRead as exc:
            raise StorageError(f"s3://{self.settings.bucket}/{key}: wanted {length} bytes at "
                               f"offset {offset}, but {exc}; {attempts.describe()}") from exc
        except (S3Error, NoCredentials, *_NETWORK_FAULTS) as exc:
            raise self._translate(exc, f"s3://{self.settings.bucket}/{key}", attempts) from exc

    def _get(self, key: str, offset: int, length: int) -> bytes:
        """One ranged GET; a body that is short for a known reason is final."""
        try:
            response = self._send(key, {}, {"Range": f"bytes={offset}-{offset + length - 1}"})
        except IncompleteBody as exc:
            raise _ShortRead(f"the body broke off ({type(exc).__name__})") from exc
        data = response.body
        self.counters.add(bytes_fetched=len(data))
        content_range = response.headers.get("content-range", "")
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
        if self._owns_transport:
            self.transport.close()

    def _translate(self, exc: Exception, what: str, attempts: _Attempts) -> Exception:
        """One clear, credential-free error naming the bucket, key or endpoint."""
        if isinstance(exc, NoCredentials):
            return StorageError(f"no S3 credentials for {what}: {_CREDENTIAL_HINT}")
        if not isinstance(exc, S3Error):
            return StorageError(f"cannot reach S3 endpoint {self.endpoint} for {what}: "
                                f"{type(exc).__name__}; {attempts.describe()}")
        code, status = exc.code, exc.status
        if code == "NoSuchBucket":
            return ReplicaError(f"no such bucket {self.settings.bucket!r} at {self.endpoint}")
        if code in ("NoSuchKey", "404") or status == 404:
            return ObjectNotFound(f"{what} not found (removed by compaction?)")
        if code in _ACCESS_DENIED or status == 403:
            return StorageError(f"access denied to {what} ({code or status}): check credentials "
                                f"({_CREDENTIAL_HINT}) and bucket permissions")
        if code in _THROTTLED or status in (429, 503):
            return StorageError(f"S3 endpoint {self.endpoint} is throttling requests for {what} "
                                f"({code}); {attempts.describe()}")
        if code == "InvalidRange" or status == 416:
            return StorageError(f"{what} is shorter than the range asked for (truncated?)")
        if _is_transient(exc):
            return StorageError(f"S3 error {code or status} for {what}; {attempts.describe()}")
        return StorageError(f"S3 error {code or status} for {what}")


@dataclass(frozen=True)
class _Listing:
    contents: list[tuple[str, int, str]]  # key, size, ETag
    next_token: str | None


def _parse_listing(body: bytes) -> _Listing:
    """One ListObjectsV2 page: (key, size, ETag) of every object, and the token of the next page."""
    root = ElementTree.fromstring(body)
    contents, truncated, token = [], False, None
    for element in root:
        tag = element.tag.rpartition("}")[2]
        if tag == "Contents":
            fields = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
            contents.append((fields.get("Key", ""), int(fields.get("Size") or 0), fields.get("ETag", "").strip('"')))
        elif tag == "IsTruncated":
            truncated = (element.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            token = element.text
    return _Listing(contents, token if truncated else None)


def _error_code(response: Response) -> str:
    """The <Code> of an S3 error body ('' without one: HEAD-like answers, proxies' pages)."""
    match = re.search(rb"<Code>([^<]*)</Code>", response.body[:4096])
    return match.group(1).decode(errors="replace") if match else ""


def _check_prefix(prefix: str, location: ReplicaLocation) -> None:
    """Refuse dot segments hidden in a key prefix (e.g. `a%2F..%2Fb`): a server or
    proxy that normalizes paths would read outside the replica's prefix."""
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ReplicaError(f"replica URL {location}: the key prefix {prefix!r} has '.' or '..' segments")


def _parse_key(relative: str, size: int, etag: str = "") -> LtxObject | None:
    """`0003/<min>-<max>.ltx` -> LtxObject; anything else (junk, deeper keys) -> None."""
    level_dir, _, name = relative.partition("/")
    if not _LEVEL_DIR.fullmatch(level_dir):
        return None
    txids = parse_ltx_name(name)
    if txids is None:
        return None
    return LtxObject(int(level_dir), txids[0], txids[1], size, etag)
