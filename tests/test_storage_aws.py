"""Every way boto3 finds S3 keys and endpoints still works, each against SeaweedFS, a real
Litestream replica on it, and the reads it answers; and the cheap path is taken exactly
when the URL and environment settle everything (then boto3 is never asked)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from litestream_vfs.errors import StorageError
from litestream_vfs.storage import aws, open_storage
from litestream_vfs.storage.s3 import s3_settings
from litestream_vfs.storage.url import parse_replica_url
from support.replicas import ReplicaFixture

AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CREDENTIAL_EXPIRATION",
            "LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY")


@pytest.fixture(scope="module")
def s3_replica(replica_factory, seaweedfs) -> ReplicaFixture:
    return replica_factory.get("0.5.17", "s3", seaweedfs)


@pytest.fixture(scope="module")
def expected(s3_replica) -> list:
    """The replica's files, listed by the test support before any test changes the environment."""
    return s3_replica.ltx_files()


@pytest.fixture
def files(monkeypatch, tmp_path):
    """No AWS settings but what a test sets: empty config and credential files, no metadata."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config, credentials


@pytest.fixture
def boto3_refused(monkeypatch):
    """Fail the test if resolution falls back to boto3."""
    def refuse(*args, **kwargs):
        raise AssertionError("boto3 was asked, though the URL and environment settle everything")

    monkeypatch.setattr(aws, "_ask_boto3", refuse)


@pytest.fixture
def boto3_asked(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = aws._ask_boto3

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(aws, "_ask_boto3", counting)
    return calls


def bare_url(s3_replica: ReplicaFixture) -> str:
    """The replica's URL without endpoint or region: the environment must supply them."""
    parts = urlsplit(s3_replica.url)
    return f"s3://{parts.netloc}{parts.path}"


def reads(url: str, expected: list) -> None:
    """List the replica and read one object, as the VFS would."""
    storage = open_storage(url)
    listed = storage.list_files()
    assert listed == expected
    newest = listed[-1]
    assert len(storage.read_range(newest, 0, 100)) == 100
    assert storage.counters.lists == 1 and storage.counters.gets == 1


def test_environment_keys(files, boto3_refused, seaweedfs, s3_replica, expected, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    reads(s3_replica.url, expected)


def test_litestream_aliases(files, boto3_refused, seaweedfs, s3_replica, expected, monkeypatch):
    monkeypatch.setenv("LITESTREAM_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("LITESTREAM_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    reads(s3_replica.url, expected)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_endpoint_from_the_environment(files, boto3_refused, seaweedfs, s3_replica, expected, monkeypatch, variable):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.setenv(variable, seaweedfs.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweedfs.region)
    reads(bare_url(s3_replica), expected)


def test_profile_in_shared_files(files, boto3_asked, seaweedfs, s3_replica, expected, monkeypatch):
    """AWS_PROFILE names a profile: keys from the credentials file, region and endpoint from config."""
    config, credentials = files
    credentials.write_text(f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
                           f"[reader]\naws_access_key_id = {seaweedfs.access_key}\n"
                           f"aws_secret_access_key = {seaweedfs.secret_key}\n")
    config.write_text(f"[profile reader]\nregion = {seaweedfs.region}\nendpoint_url = {seaweedfs.endpoint_url}\n"
                      f"s3 =\n    addressing_style = path\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "reader")
    reads(bare_url(s3_replica), expected)
    assert boto3_asked


def test_environment_keys_win_over_a_profile(files, seaweedfs, s3_replica, expected, monkeypatch):
    """As in boto3: AWS_ACCESS_KEY_ID/SECRET beat AWS_PROFILE's keys."""
    config, credentials = files
    credentials.write_text("[reader]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n")
    monkeypatch.setenv("AWS_PROFILE", "reader")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    reads(s3_replica.url, expected)


class _ContainerCredentials(http.server.BaseHTTPRequestHandler):
    """What ECS/EKS serve at AWS_CONTAINER_CREDENTIALS_FULL_URI: keys, a token and an expiry. The
    token is empty: SeaweedFS refuses session tokens it did not issue (test_storage_sigv4 checks
    that a token is signed as botocore signs it)."""

    answer: bytes = b""
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def container_endpoint(seaweedfs) -> Iterator[tuple[str, list[str]]]:
    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    handler = type("Handler", (_ContainerCredentials,), {
        "seen": [],
        "answer": json.dumps({"AccessKeyId": seaweedfs.access_key, "SecretAccessKey": seaweedfs.secret_key,
                              "Token": "", "Expiration": expires}).encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="container-credentials", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/credentials", handler.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_container_credentials(files, boto3_asked, seaweedfs, s3_replica, expected, container_endpoint, monkeypatch):
    uri, seen = container_endpoint
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "task-secret")
    reads(s3_replica.url, expected)
    assert boto3_asked and seen and set(seen) == {"task-secret"}


def test_no_keys_anywhere_is_one_clear_error(files, s3_replica):
    with pytest.raises(StorageError, match="no S3 credentials.*LITESTREAM_ACCESS_KEY_ID"):
        open_storage(s3_replica.url).list_files()


def test_an_alias_key_without_its_secret_is_refused(files, s3_replica, monkeypatch):
    monkeypatch.setenv("LITESTREAM_ACCESS_KEY_ID", "someone")
    with pytest.raises(StorageError, match="LITESTREAM_SECRET_ACCESS_KEY"):
        open_storage(s3_replica.url)


# -- which path: unit checks of the decision, no requests ----------------------------
def settings_for(url: str):
    return s3_settings(parse_replica_url(url), {})


KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@pytest.mark.parametrize("url, environ, endpoint, region", [
    ("s3://bucket/db", {**KEYS, "AWS_DEFAULT_REGION": "eu-west-1"}, "https://s3.eu-west-1.amazonaws.com", "eu-west-1"),
    ("s3://bucket/db", KEYS, "https://s3.amazonaws.com", "us-east-1"),
    ("s3://bucket/db?region=ap-south-1", KEYS, "https://s3.ap-south-1.amazonaws.com", "ap-south-1"),
    ("s3://bucket/db?endpoint=minio:9000", KEYS, "https://minio:9000", "us-east-1"),
    ("s3://bucket/db", {**KEYS, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000", "us-east-1"),
])
def test_settled_without_boto3(files, boto3_refused, url, environ, endpoint, region):
    target, credentials = aws.resolve(settings_for(url), environ)
    assert (target.endpoint, target.region) == (endpoint, region)
    assert credentials().access_key == "AKIAEXAMPLE"


@pytest.mark.parametrize("environ", [
    {"AWS_DEFAULT_REGION": "eu-west-1"},  # no keys: the credential chain
    {**KEYS, "AWS_USE_FIPS_ENDPOINT": "true"},  # endpoint rules
    {**KEYS, "AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z"},
])
def test_left_to_boto3(files, boto3_asked, environ):
    aws.resolve(settings_for("s3://bucket/db"), environ)
    assert boto3_asked


def test_a_profile_with_more_than_keys_and_region_is_read_by_boto3(files, boto3_asked, monkeypatch):
    config, _ = files
    config.write_text("[default]\nregion = eu-central-1\nuse_fips_endpoint = false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    target, _ = aws.resolve(settings_for("s3://bucket/db"), {**KEYS, "AWS_CONFIG_FILE": str(config)})
    assert boto3_asked and target.region == "eu-central-1"
    assert target.endpoint == "https://s3.eu-central-1.amazonaws.com"


@pytest.mark.parametrize("bucket, path_style, expected", [
    ("my-bucket", False, ("https://my-bucket.s3.amazonaws.com", "/")),
    ("my-bucket", True, ("https://s3.amazonaws.com", "/my-bucket/")),
    ("dotted.bucket", False, ("https://s3.amazonaws.com", "/dotted.bucket/")),
])
def test_addressing_style(bucket, path_style, expected):
    target = aws.Target("https://s3.amazonaws.com", "us-east-1", path_style, False)
    assert target.for_bucket(bucket) == expected


# -- profiles read without boto3 must agree with boto3 --------------------------------
PROFILES = {
    "default keys, region in config": (
        "[default]\nregion = eu-west-3\n", "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n", {}),
    "named profile": (
        "[default]\nregion = eu-west-1\n[profile reader]\nregion = ap-east-1\noutput = json\n",
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n"
        "[reader]\naws_access_key_id = AKIAREADER\naws_secret_access_key = s2\naws_session_token = t2\n",
        {"AWS_PROFILE": "reader"}),
    "keys only in the config file": (
        "[profile cfg]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s3\nregion = sa-east-1\n", "",
        {"AWS_PROFILE": "cfg"}),
    "credentials file beats config file": (
        "[default]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s3\n",
        "[default]\naws_access_key_id = AKIASHARED\naws_secret_access_key = s4\n", {}),
    "no region anywhere": ("[default]\noutput = text\n",
                           "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n", {}),
    "environment keys, region from the profile": (
        "[default]\nregion = eu-north-1\n", "", {**KEYS}),
}
NOT_PLAIN = {
    "assume role": ("[profile r]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n",
                    "[default]\naws_access_key_id = A\naws_secret_access_key = s\n", {"AWS_PROFILE": "r"}),
    "sso": ("[profile s]\nsso_start_url = https://example.invalid/start\nsso_region = us-east-1\n"
            "sso_account_id = 1\nsso_role_name = r\n", "", {"AWS_PROFILE": "s"}),
    "credential_process": ("[default]\ncredential_process = /bin/false\n", "", {}),
    "endpoint in the profile": ("[default]\nendpoint_url = http://127.0.0.1:1\n",
                                "[default]\naws_access_key_id = A\naws_secret_access_key = s\n", {}),
    "nested s3 settings": ("[default]\ns3 =\n    addressing_style = path\n",
                           "[default]\naws_access_key_id = A\naws_secret_access_key = s\n", {}),
    "missing profile": ("[default]\nregion = eu-west-1\n", "", {"AWS_PROFILE": "nobody"}),
    "AWS_DEFAULT_PROFILE": ("[default]\nregion = eu-west-1\n",
                            "[default]\naws_access_key_id = A\naws_secret_access_key = s\n",
                            {"AWS_DEFAULT_PROFILE": "default"}),
}


def write_profiles(files, monkeypatch, config_text, credentials_text, environ) -> dict[str, str]:
    config, credentials = files
    config.write_text(config_text)
    credentials.write_text(credentials_text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    import os

    return dict(os.environ)


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_plain_profiles_match_boto3_without_it(files, boto3_refused, monkeypatch, case):
    import boto3

    environ = write_profiles(files, monkeypatch, *PROFILES[case])
    target, credentials = aws.resolve(settings_for("s3://bucket/db"), environ)
    session = boto3.session.Session()
    theirs = session.get_credentials().get_frozen_credentials()
    ours = credentials()
    assert (ours.access_key, ours.secret_key, ours.token) == (theirs.access_key, theirs.secret_key, theirs.token)
    assert target.region == (session.region_name or "us-east-1")
    assert target.endpoint == aws.aws_endpoint(target.region)


@pytest.mark.parametrize("case", sorted(NOT_PLAIN))
def test_other_profiles_are_left_to_boto3(files, monkeypatch, case):
    environ = write_profiles(files, monkeypatch, *NOT_PLAIN[case])
    assert aws.plain_profile(environ) is None


def test_profile_keys_read_a_replica_without_boto3(files, boto3_refused, seaweedfs, s3_replica, expected,
                                                   monkeypatch):
    """The common laptop set-up: keys in ~/.aws/credentials, region in ~/.aws/config."""
    config, credentials = files
    credentials.write_text(f"[reader]\naws_access_key_id = {seaweedfs.access_key}\n"
                           f"aws_secret_access_key = {seaweedfs.secret_key}\n")
    config.write_text(f"[profile reader]\nregion = {seaweedfs.region}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "reader")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweedfs.endpoint_url)
    reads(bare_url(s3_replica), expected)


def test_requests_go_through_the_environment_s_proxy(files, seaweedfs, s3_replica, expected, monkeypatch):
    """HTTP_PROXY is honoured as boto3 honoured it (signed for the endpoint, sent to the proxy)."""
    from support.forward_proxy import ForwardProxy

    for name in ("no_proxy", "NO_PROXY", "http_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        reads(s3_replica.url, expected)
        assert [method for method, _, _ in proxy.seen] == ["GET", "GET"]  # the LIST, then one range
        assert all(target.startswith(seaweedfs.endpoint_url) for _, target, _ in proxy.seen)


def test_a_ca_bundle_in_the_config_file_is_trusted_by_the_transport(files, boto3_asked, monkeypatch, tmp_path):
    config, _ = files
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)  # it would win over the config file, as in boto3
    bundle = tmp_path / "corporate-ca.pem"
    config.write_text(f"[default]\nregion = eu-west-1\nca_bundle = {bundle}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    environ = {**KEYS, "AWS_CONFIG_FILE": str(config)}
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    target, _ = aws.resolve(settings_for("s3://bucket/db"), environ)
    assert boto3_asked and target.ca_bundle == str(bundle)
    storage = open_storage("s3://bucket/db")
    assert storage.transport.ca_bundle == str(bundle)
