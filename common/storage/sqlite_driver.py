"""aiosqlite as SQLAlchemy drives it, with each statement a single trip to the driver's thread.

SQLAlchemy's adapter awaits aiosqlite's thread to open a cursor, to execute, to fetch and to
close: four trips per statement, each a thread hand-off and an event loop wake-up, about a
quarter of a write transaction's CPU (`make bench-storage`). Here a statement runs and its
rows are fetched in one trip; the cursor SQLAlchemy sees holds what the statement left (rows,
description, counts).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


class _Outcome:
    """What a statement left on its cursor, which is closed already (or nothing yet)."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor | None = None) -> None:
        self.description = cursor.description if cursor else None
        self.rowcount = cursor.rowcount if cursor else -1
        self.lastrowid = cursor.lastrowid if cursor else None
        self.arraysize = cursor.arraysize if cursor else 1

    def close(self) -> None:
        return None


def _run(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Outcome, list[Any]]:
    """In the driver's thread: run the statement, fetch its rows, close its cursor."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return _Outcome(cursor), rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    # Our stand-in's close is synchronous: closing it costs no trip.
    _awaitable_cursor_close = False

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Outcome()  # the statement's own cursor lives and dies in the driver's thread

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._one_trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._one_trip(operation, seq_of_parameters, many=True)

    async def _one_trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome, rows = await driver._execute(_run, driver._conn, operation, parameters, many)
        self._cursor = outcome  # type: ignore[assignment]
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back; outside a transaction (a read,
        # or a write that committed) that is a trip for nothing.
        driver = self._connection
        if driver._connection is not None and not driver._connection.in_transaction:
            return
        super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    """The DBAPI module to hand `create_async_engine(module=...)` for SQLite files."""
    return OneTripDBAPI(aiosqlite, sqlite3)
