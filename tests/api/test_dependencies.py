"""Temporal or storage down: the API starts anyway, says which is down, and recovers by itself."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from common.models import JobStatusEnum
from common.settings import ServerSettings, StorageSettings
from tests.api.conftest import (
    Stack,
    asgi_client,
    create_experiment,
    create_job,
    register,
    running,
    wait_job,
)
from tests.support.stack import FakeAgent, free_port, wait_until

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
QUICK_RETRY = {"RUCKUS_DEPENDENCY_RETRY_INTERVAL": "0.3"}


async def health(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/health")
    assert response.status_code == 200
    return dict(response.json())


async def test_health_reports_each_dependency(http: httpx.AsyncClient) -> None:
    body = await health(http)
    assert body["status"] == "healthy"
    assert (body["storage"], body["temporal"]) == ("ok", "ok")
    assert body["version"]


async def test_job_creation_is_503_while_temporal_is_down_and_recovers(
    tmp_path: Path, fake_agent: FakeAgent
) -> None:
    """Temporal down at start, then up, then killed, then restarted on its database."""
    own = Stack(tmp_path)  # its own Temporal server, worker and storage; Temporal not started
    api = own.api_process(**QUICK_RETRY)
    await api.start_and_wait()
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            body = await health(http)
            assert body["status"] == "degraded"
            assert body["storage"] == "ok"
            assert body["temporal"].startswith("unavailable: ")
            assert "Temporal is unavailable" in api.output()

            # What needs only storage works meanwhile.
            agent_id = await register(http, fake_agent.url)
            experiment_id = await create_experiment(http)
            job_body = {"experiment_id": experiment_id, "agent_id": agent_id}
            r = await http.post("/api/v1/jobs", json=job_body)
            assert r.status_code == 503
            assert "Temporal is unavailable" in r.json()["detail"]
            assert r.headers["retry-after"]
            # An agent's notification too: its job's poll covers it once Temporal is back.
            r = await http.post("/api/v1/jobs/job_12345678/notify")
            assert r.status_code == 503 and "Temporal is unavailable" in r.json()["detail"]

            await own.temporal.start_and_wait()
            await own.start_worker()
            await wait_until(lambda: _temporal_ok(http), 30, what="the API to reach Temporal")
            job = await create_job(http, experiment_id, agent_id)
            await wait_job(http, job.job_id, JobStatusEnum.COMPLETED)

            own.temporal.kill()
            r = await http.post("/api/v1/jobs", json=job_body)
            assert r.status_code == 503, r.text
            assert "Temporal is unavailable" in r.json()["detail"]
            assert (await health(http))["temporal"].startswith("unavailable: ")
            r = await http.post(f"/api/v1/jobs/{job.job_id}/notify")
            assert r.status_code == 503, r.text
            # Reads come from storage and still answer.
            assert (await http.get(f"/api/v1/jobs/{job.job_id}")).status_code == 200

            await own.temporal.start_and_wait()
            await wait_until(lambda: _temporal_ok(http), 30, what="the API to reach Temporal again")
            again = await create_job(http, experiment_id, agent_id)
            await wait_job(http, again.job_id, JobStatusEnum.COMPLETED)
    finally:
        api.stop()
        own.worker.stop()
        own.temporal.stop()


async def _temporal_ok(http: httpx.AsyncClient) -> bool:
    return (await health(http))["temporal"] == "ok"


class TcpProxy:
    """A TCP forwarder to PostgreSQL that the test can take down and bring back."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a database going away does."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        pipes = {
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        }
        self._pipes |= pipes
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes -= pipes
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    name = f"ruckus_api_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(**PG, database="postgres", timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield name
    admin = await asyncpg.connect(**PG, database="postgres", timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_storage_down_at_start_and_later_is_503_and_recovers(
    stack: Stack, postgres_database: str
) -> None:
    proxy = TcpProxy(free_port(), (PG["host"], int(PG["port"])))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{postgres_database}"
    api = stack.api_process("pg", RUCKUS_STORAGE_DATABASE_URL=url, **QUICK_RETRY)
    await api.start_and_wait()
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            body = await health(http)
            assert body["status"] == "degraded" and body["temporal"] == "ok"
            assert body["storage"].startswith("unavailable: ")
            assert "storage is unavailable" in api.output()
            r = await http.get("/api/v1/experiments/")
            assert r.status_code == 503 and "storage is unavailable" in r.json()["detail"]

            await proxy.start()
            await wait_until(lambda: _storage_ok(http), 30, what="the API to reach storage")
            experiment_id = await create_experiment(http)

            await proxy.stop()
            r = await http.get("/api/v1/experiments/")
            assert r.status_code == 503, r.text
            assert "storage is unavailable" in r.json()["detail"]
            assert (await health(http))["storage"].startswith("unavailable: ")

            await proxy.start()
            await wait_until(lambda: _storage_ok(http), 30, what="storage to be back")
            experiments = (await http.get("/api/v1/experiments/")).json()["experiments"]
            assert [e["id"] for e in experiments] == [experiment_id]
    finally:
        # In a thread: the proxy runs on this loop and must carry the API's goodbyes.
        await asyncio.to_thread(api.stop)
        await proxy.stop()
    assert "Application shutdown complete" in api.output()


async def _storage_ok(http: httpx.AsyncClient) -> bool:
    return (await health(http))["storage"] == "ok"


async def test_shutdown_leaves_nothing_running(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's own storage and Temporal client, started and stopped by its lifespan."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal.address)
    app = create_app(
        ServerSettings(dependency_retry_interval=0.2),
        storage_settings=StorageSettings(data_dir=tmp_path / "storage"),
        job_settings=stack.settings,
    )
    before = asyncio.all_tasks()
    async with running(app):
        assert app.state.job_manager.client is not None
        assert app.state.connections.monitor is not None
        async with asgi_client(app) as http:
            assert (await health(http))["status"] == "healthy"
            assert (await http.get("/api/v1/agents/")).json() == {"agents": []}
    assert app.state.connections.monitor is None
    with pytest.raises(RuntimeError, match="not started"):
        _ = app.state.agent_manager.agents
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert left == set(), left
