"""Where S3 requests go and with which keys, exactly as boto3 would decide, mostly without boto3.

boto3 costs a quarter of a second to import and build a client. When the URL,
environment and AWS files settle everything — keys in AWS_ACCESS_KEY_ID/SECRET,
Litestream's aliases, or a profile holding only keys and region; the endpoint
in the URL or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (else AWS's own); the
region in the URL, AWS_DEFAULT_REGION or that profile — those are boto3's own
answers, so nothing else is loaded. Otherwise boto3 itself resolves the endpoint and
region (profiles, config files, FIPS/dual-stack) and its credential chain
supplies the keys (profiles, SSO, assume-role, web identity, container and
instance roles, credential_process), refreshed as it refreshes them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import StorageError
from .sigv4 import Credentials

DEFAULT_REGION = "us-east-1"
CREDENTIAL_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                   "(or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY), or an AWS profile")
#: Profile settings that leave boto3's credential chain at the profile's own keys.
_PLAIN_PROFILE_KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                 "aws_account_id", "region", "output"})
#: Environment that makes boto3 choose endpoints or keys by rules we leave to it.
_BOTO3_ONLY = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CREDENTIAL_EXPIRATION",
               "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS")


class NoCredentials(StorageError):
    """No keys anywhere in boto3's chain (the store names what it was reading)."""


@dataclass(frozen=True)
class Target:
    """Where requests for one bucket go."""

    endpoint: str  # scheme://host[:port] of the service, no bucket in it
    region: str
    path_style: bool
    custom: bool  # an endpoint the user named (not AWS's own)
    ca_bundle: str | None = None  # from the AWS config (AWS_CA_BUNDLE is read by the transport)

    def for_bucket(self, bucket: str) -> tuple[str, str]:
        """(endpoint of the request, path prefix): virtual-hosted where boto3's 'auto' would be."""
        parts = urlsplit(self.endpoint)
        dns_safe = bucket.islower() and "." not in bucket and "_" not in bucket
        if self.path_style or not dns_safe:
            return self.endpoint, f"/{bucket}/"
        return f"{parts.scheme}://{bucket}.{parts.netloc}", "/"


def aws_endpoint(region: str) -> str:
    return "https://s3.amazonaws.com" if region == DEFAULT_REGION else f"https://s3.{region}.amazonaws.com"


def _config_file(environ: Mapping[str, str]) -> bool:
    return os.path.isfile(os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config"))


def _env_endpoint(environ: Mapping[str, str]) -> str | None:
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def _env_credentials(settings: Any, environ: Mapping[str, str]) -> Credentials | None:
    """Keys given outright: the URL's aliases (passed to boto3 explicitly), else boto3's EnvProvider."""
    if settings.access_key_id:
        if not settings.secret_access_key:
            raise StorageError(f"LITESTREAM_ACCESS_KEY_ID is set without LITESTREAM_SECRET_ACCESS_KEY; "
                               f"{CREDENTIAL_HINT}")
        return Credentials(settings.access_key_id, settings.secret_access_key)
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN"))
    return None


def _ini(path: str) -> dict[str, dict[str, str]] | None:
    """Sections of an AWS INI file ({} if absent); None if it does not parse (boto3 will say why)."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read([os.path.expanduser(os.path.expandvars(path))])
    except (configparser.Error, UnicodeDecodeError):
        return None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def plain_profile(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The selected profile (config file merged with credentials file, as botocore merges them)
    when it holds nothing but keys, region and output: then boto3's chain ends at its keys (the
    credentials file's before the config file's) and its region is the profile's. None when the
    profile asks for more (roles, SSO, web identity, processes, endpoints, ...), is missing, or
    the environment selects a web identity: boto3 decides those."""
    if "AWS_DEFAULT_PROFILE" in environ or environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or environ.get("AWS_ROLE_ARN"):
        return None
    name = environ.get("AWS_PROFILE", "default")
    config = _ini(environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    shared = _ini(environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
    if not name or config is None or shared is None:
        return None
    sections = [values for section, values in config.items()
                if (section.split() == ["profile", name]) or (name == "default" and section == "default")]
    if len(sections) > 1 or (not sections and name not in shared):
        return None
    merged = {**(sections[0] if sections else {}), **shared.get(name, {})}
    if set(merged) - _PLAIN_PROFILE_KEYS:
        return None
    return merged


def _profile_credentials(environ: Mapping[str, str], profile: dict[str, str] | None) -> Credentials | None:
    """Keys of a plain profile, from the credentials file first, as botocore's chain takes them."""
    if profile is None:
        return None
    shared = _ini(environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials") or {}
    name = environ.get("AWS_PROFILE", "default")
    source = shared.get(name) if "aws_access_key_id" in shared.get(name, {}) else profile
    if not source.get("aws_access_key_id") or not source.get("aws_secret_access_key"):
        return None  # no keys (a metadata service, perhaps) or half of them: boto3 decides or explains
    return Credentials(source["aws_access_key_id"], source["aws_secret_access_key"],
                       source.get("aws_session_token"))


def resolve(settings: Any, environ: Mapping[str, str]) -> tuple[Target, Callable[[], Credentials]]:
    """(where to send requests, a function returning valid keys) for `S3Settings`."""
    has_config = _config_file(environ)
    profile = plain_profile(environ) if has_config or not _env_credentials(settings, environ) else None
    static = _env_credentials(settings, environ) or _profile_credentials(environ, profile)
    endpoint = settings.endpoint_url or _env_endpoint(environ)
    region = settings.region or environ.get("AWS_DEFAULT_REGION") or (profile or {}).get("region")
    if region is None and (not has_config or profile is not None):
        region = DEFAULT_REGION
    settled = region is not None and (endpoint is not None or not has_config or profile is not None)
    if static is not None and settled and not any(environ.get(name) for name in _BOTO3_ONLY):
        target = Target(endpoint or aws_endpoint(region), region, settings.force_path_style, endpoint is not None)
        return target, lambda: static
    return _ask_boto3(settings, static)


def _ask_boto3(settings: Any, static: Credentials | None) -> tuple[Target, Callable[[], Credentials]]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(s3={"addressing_style": "path"}) if settings.force_path_style else None
    client = session.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config,
                            aws_access_key_id=static.access_key if static else None,
                            aws_secret_access_key=static.secret_key if static else None)
    configured = (client.meta.config.s3 or {}).get("addressing_style")  # the URL's, else the config file's
    endpoint = client.meta.endpoint_url.rstrip("/")
    custom = settings.endpoint_url is not None or not urlsplit(endpoint).netloc.endswith(".amazonaws.com")
    # As for endpoints named in the URL or environment: path style unless told otherwise.
    path_style = configured == "path" or (custom and configured != "virtual")
    target = Target(endpoint, client.meta.region_name or DEFAULT_REGION, path_style, custom,
                    session._session.get_config_variable("ca_bundle"))
    client.close()
    if static is not None:
        return target, lambda: static
    return target, _ChainCredentials(session)


class _ChainCredentials:
    """boto3's credential chain, resolved at the first request (it may ask a metadata service)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._credentials: Any = None

    def __call__(self) -> Credentials:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._session.get_credentials()
                if self._credentials is None:
                    raise NoCredentials(CREDENTIAL_HINT)
        frozen = self._credentials.get_frozen_credentials()  # refreshes expiring keys
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)
