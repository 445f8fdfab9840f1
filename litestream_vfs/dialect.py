"""SQLAlchemy dialect `litestream`: SQLite's dialect over `litestream_vfs.dbapi`.

    create_engine("litestream:///chinook.db?replica=s3%3A%2F%2Fbucket%2Fchinook.db"
                  "&litestream_time=2024-05-01T00:00:00Z")

The database part of the URL names the file (a label, or the database's name
in a directory of replicas); `replica` is the URL-encoded replica URL (when
left out, the `register(replicas=...)` mapping or LITESTREAM_REPLICA_URL);
`litestream_time` / `litestream_txid` pin every connection of the engine to a
past state; any other query parameter is passed on as a VFS URI parameter.
Registered through the `sqlalchemy.dialects` entry point, so importing this
package is not needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import exc, pool
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import URL

from .process import PROCESS


class LitestreamDialect(SQLiteDialect):
    """SQLite's SQL, reflection and types, on read-only replica connections."""

    name = "litestream"
    driver = "litestream"
    default_paramstyle = "qmark"
    supports_statement_cache = True
    returns_native_bytes = True
    _isolation_lookup = SQLiteDialect._isolation_lookup.union({"AUTOCOMMIT": None})

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        from . import dbapi

        return dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        label = url.database
        if not label:
            raise exc.ArgumentError(f"{url.render_as_string()}: name the database, "
                                    "as in litestream:///chinook.db?replica=...")
        params = dict(url.query)
        replica = params.pop("replica", None) or PROCESS.replica_url_for(label, None)
        if not replica:
            raise exc.ArgumentError(f"{url.render_as_string()}: no replica for {label!r}; add "
                                    "?replica=<URL-encoded replica URL>")
        time, txid = params.pop("litestream_time", None), params.pop("litestream_txid", None)
        return [replica], {"time": time, "txid": txid, "label": label, **params}

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return self.dbapi.sqlite_version_info

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        if level != "AUTOCOMMIT":  # every connection is autocommit already: nothing is ever written
            super().set_isolation_level(dbapi_connection, level)
