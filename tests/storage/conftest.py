"""Run the storage contract on every backend: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import delete

from common.storage import SQLStorageBackend
from common.storage.schema import metadata
from tests.storage.helpers import open_backend

PG_HOST = os.environ.get("RUCKUS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RUCKUS_TEST_PG_PORT", "5432"))
PG_USER = "postgres"


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=10
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as err:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as user {PG_USER} ({err!r}); "
            "the storage contract must run against it: start it with scripts/ensure-postgres.sh",
            pytrace=False,
        )


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A database created for this run and dropped after it."""
    name = f"ruckus_test_{secrets.token_hex(6)}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('storage') / 'ruckus.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[SQLStorageBackend]:
    """An initialised backend on an empty database (tables kept, rows removed)."""
    backend = open_backend(storage_url)
    await backend.initialize()
    async with backend.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
    yield backend
    await backend.close()
