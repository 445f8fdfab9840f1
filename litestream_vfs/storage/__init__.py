"""Replica stores (local directory, S3, ...) behind one read-only interface."""

from .base import Counters, LtxObject, Storage
from .url import ReplicaLocation, open_storage, parse_replica_url

__all__ = ["Counters", "LtxObject", "ReplicaLocation", "Storage", "open_storage", "parse_replica_url"]
