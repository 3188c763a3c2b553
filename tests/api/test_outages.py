"""A database that goes away answers 503, never 500; an unexpected error answers a JSON 500
and the client's connection stays open."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
import uvicorn
from sqlalchemy import text

from api.app import create_app
from common.models import ExperimentSpec
from common.settings import ServerSettings, StorageSettings
from common.storage import PostgreSQLStorageBackend, SQLiteStorageBackend
from tests.api.conftest import Stack, asgi_client, running
from tests.storage.conftest import PG_HOST, PG_PORT, PG_USER
from tests.support.stack import free_port, wait_until


class TerminatedMidRequest(PostgreSQLStorageBackend):
    """PostgreSQL whose server ends the connection under a read, as a restart does."""

    async def list_experiments(self) -> list[ExperimentSpec]:
        async with self._read() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return await super().list_experiments()


class Broken(SQLiteStorageBackend):
    async def list_experiments(self) -> list[ExperimentSpec]:
        raise RuntimeError("a bug, not an outage")


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    name = f"ruckus_outage_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_a_database_ending_the_connection_answers_503_then_recovers(
    stack: Stack, postgres_database: str
) -> None:
    storage = TerminatedMidRequest(StorageSettings(database_url=postgres_database))
    await storage.initialize()
    app = create_app(
        ServerSettings(), storage=storage, temporal_client=await stack.temporal.client()
    )
    try:
        async with running(app), asgi_client(app) as http:
            answer = await http.get("/api/v1/experiments/")
            assert answer.status_code == 503, answer.text
            assert answer.json()["detail"].startswith("storage is unavailable")
            assert answer.headers["retry-after"]
            # The next request gets a new connection: the outage was the server's, not ours.
            assert (await http.get("/api/v1/agents/")).status_code == 200
    finally:
        await storage.close()


async def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_open(
    stack: Stack, tmp_path: object
) -> None:
    storage = Broken(StorageSettings(data_dir=stack.root / f"broken-{secrets.token_hex(4)}"))
    await storage.initialize()
    app = create_app(
        ServerSettings(), storage=storage, temporal_client=await stack.temporal.client()
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, 30, what="the API to serve")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/api/v1/experiments/", "/api/v1/experiments/", "/api/v1/agents/"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: ruckus\r\n\r\n".encode())
            await writer.drain()
            status, body = await _read_response(reader)
            if path == "/api/v1/agents/":
                assert status == 200
            else:
                assert status == 500
                assert json.loads(body)["detail"].startswith("internal error")
        writer.close()
    finally:
        server.should_exit = True
        await serving
        await storage.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response from a kept-alive connection (EOF here fails the test)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    assert headers.get("connection", "").lower() != "close"
    body = await reader.readexactly(int(headers["content-length"]))
    return status, body
