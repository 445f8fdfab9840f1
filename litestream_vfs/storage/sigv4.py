"""AWS Signature Version 4 for the bodiless S3 requests a reader sends (GET, LIST).

A few hashes per request with the standard library, instead of importing
botocore's signer (hundreds of milliseconds); tests check it against botocore.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_SAFE = "-_.~"


@dataclass(frozen=True)
class Credentials:
    """One set of keys, valid now (refreshing ones are frozen per request)."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def encode_path(path: str) -> str:
    """S3's canonical URI: every byte escaped but the unreserved ones and '/' (no double encoding)."""
    return quote(path, safe="/" + _SAFE)


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in sorted(params.items()))


class Signer:
    """Signs requests for one region; the day's signing key is derived once and kept."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._key: tuple[str, str, bytes] | None = None  # (secret, yyyymmdd, key)

    def headers(self, method: str, host: str, path: str, query: str, credentials: Credentials,
                extra: dict[str, str] | None = None, now: datetime | None = None) -> dict[str, str]:
        """The headers to send: `extra` plus host, date, payload hash, token and Authorization."""
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        headers = {k.lower(): v.strip() for k, v in (extra or {}).items()}
        headers.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": EMPTY_SHA256})
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        names = sorted(headers)
        signed = ";".join(names)
        request = "\n".join([method, encode_path(path), query,
                             "".join(f"{name}:{headers[name]}\n" for name in names), signed, EMPTY_SHA256])
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
        signature = hmac.new(self._signing_key(credentials.secret_key, stamp[:8]), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == day:
            return cached[2]
        key = ("AWS4" + secret).encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = (secret, day, key)
        return key
