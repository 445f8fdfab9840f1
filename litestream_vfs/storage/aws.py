"""Where S3 requests go and with which keys, exactly as boto3 would decide, mostly without boto3.

boto3 costs a quarter of a second to import and build a client. When the URL
and environment settle everything — keys in AWS_ACCESS_KEY_ID/SECRET (or
Litestream's aliases), the endpoint in the URL or AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, the region in the URL or AWS_DEFAULT_REGION (or no AWS
config file that could name one) — those are boto3's own first answers, so
nothing else is loaded. Otherwise boto3 itself resolves the endpoint and
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


def resolve(settings: Any, environ: Mapping[str, str]) -> tuple[Target, Callable[[], Credentials]]:
    """(where to send requests, a function returning valid keys) for `S3Settings`."""
    static = _env_credentials(settings, environ)
    endpoint = settings.endpoint_url or _env_endpoint(environ)
    region = settings.region or environ.get("AWS_DEFAULT_REGION")
    if region is None and not _config_file(environ):
        region = DEFAULT_REGION
    settled = region is not None and (endpoint is not None or not _config_file(environ))
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
    target = Target(endpoint, client.meta.region_name or DEFAULT_REGION, path_style, custom)
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
