"""The async SQLAlchemy engine for the configured database, with SQLite made safe to share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.settings import StorageSettings
from common.storage.sqlite_driver import one_trip_dbapi

# Execution option that marks a connection as a writer: on SQLite it begins with BEGIN IMMEDIATE,
# taking the write lock up front instead of failing to upgrade a read lock halfway through.
WRITE_OPTION = "ruckus_write"
# Execution option that marks a connection as a single-statement reader: no BEGIN on SQLite.
READ_OPTION = "ruckus_read"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def database_url(settings: StorageSettings) -> URL:
    """The configured URL, with the async driver filled in when the URL names none."""
    url = make_url(settings.url)
    if url.drivername in _ASYNC_DRIVERS:
        url = url.set(drivername=_ASYNC_DRIVERS[url.drivername])
    return url


def create_engine(settings: StorageSettings) -> AsyncEngine:
    """An engine for the configured database; creates the SQLite file's directory."""
    url = database_url(settings)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return create_async_engine(
        url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        pool_pre_ping=True,  # survive a database restart between requests
        connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


def _sqlite_engine(url: URL, settings: StorageSettings) -> AsyncEngine:
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        raise ValueError(f"SQLite storage needs a file, not {url}: nothing else is durable")
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, echo=settings.echo, pool_size=settings.pool_size, module=one_trip_dbapi()
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would defer BEGIN; SQLAlchemy issues it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(READ_OPTION):
            return  # a single-statement read: SQLite makes each statement atomic by itself
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")

    return engine
