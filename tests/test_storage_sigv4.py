"""Our SigV4 signatures are botocore's, byte for byte (servers also check them in every S3 test)."""

from __future__ import annotations

from datetime import datetime, timezone

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from litestream_vfs.storage.sigv4 import EMPTY_SHA256, Credentials, Signer, canonical_query, encode_path

WHEN = datetime(2026, 11, 23, 12, 34, 56, tzinfo=timezone.utc)


def botocore_authorization(url: str, headers: dict[str, str], credentials: Credentials, region: str) -> str:
    request = AWSRequest(method="GET", url=url, headers={**headers, "X-Amz-Content-SHA256": EMPTY_SHA256})
    signer = S3SigV4Auth(BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token),
                         "s3", region)
    signer.add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("path, query, extra, token", [
    ("/bucket/db/0000/0000000000000001-0000000000000001.ltx", {}, {"Range": "bytes=0-99"}, None),
    ("/bucket/", {"list-type": "2", "prefix": "dbs/my db+x/"}, {}, None),
    ("/", {"list-type": "2", "prefix": "p/", "continuation-token": "a/b=c+d"}, {}, "session-token"),
    ("/bucket/odd key/ü~.ltx", {}, {"Range": "bytes=5-9"}, "t"),
])
def test_signature_matches_botocore(monkeypatch, path, query, extra, token):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    credentials = Credentials("AKIAEXAMPLE", "secret/key+1", token)
    host = "127.0.0.1:9000"
    headers = Signer("eu-west-1").headers("GET", host, path, canonical_query(query), credentials, extra, now=WHEN)
    url = f"http://{host}{encode_path(path)}" + ("?" + canonical_query(query) if query else "")
    unsigned = {k: v for k, v in headers.items() if k not in ("authorization", "x-amz-content-sha256")}
    assert headers["authorization"] == botocore_authorization(url, unsigned, credentials, "eu-west-1")
    assert (headers.get("x-amz-security-token") == token) or token is None


def test_signing_key_is_kept_for_the_day():
    signer = Signer("us-east-1")
    first = signer._signing_key("secret", "20261123")
    assert signer._signing_key("secret", "20261123") is first
    assert signer._signing_key("secret", "20261124") != first
