"""Fixtures for the API tests: a real dev server, a worker process, SQLite storage, agents.

Most tests call the app in this process over ASGI (`http`); the ones about the process
itself (end to end, restart, dependencies down) run `ruckus api` as a real uvicorn process.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from common.models import JobInfo, JobStatusEnum
from common.settings import JobManagerSettings, ServerSettings, StorageSettings
from common.storage import StorageBackend, create_storage
from tests.api.cli_support import CLI_API_KEY, CliAgent
from tests.orchestration.conftest import FAST, fast_settings
from tests.support.stack import (
    FakeAgent,
    HttpService,
    ManagedProcess,
    TemporalDevServer,
    free_port,
    wait_until,
)

STATUS_TIMEOUT = 1.0


class Stack:
    """A Temporal dev server, a worker process and SQLite storage that the processes share."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.temporal = TemporalDevServer(root)
        self.settings: JobManagerSettings = fast_settings()
        self.storage_settings = StorageSettings(data_dir=root / "storage")
        self.worker = ManagedProcess(
            [sys.executable, "-m", "ruckus.cli", "worker"], root / "worker.log", self.env()
        )

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a Ruckus process on this stack."""
        return {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "RUCKUS_STORAGE_DATA_DIR": str(self.storage_settings.data_dir),
            "RUCKUS_TASK_QUEUE": self.settings.task_queue,
            **{f"RUCKUS_{k.upper()}": str(v) for k, v in FAST.items()},
            **extra,
        }

    async def start_worker(self) -> None:
        self.worker.start()
        await wait_until(
            lambda: "worker serving task queue" in self.worker.output(),
            60,
            what=f"the worker to serve (log: {self.worker.log_path})",
        )

    def api_process(self, name: str = "api", **env: str) -> HttpService:
        """`ruckus api` on a free port, on this stack (not started)."""
        port = free_port()
        cmd = [sys.executable, "-m", "ruckus.cli", "api", "--port", str(port)]
        return HttpService(cmd, port, self.root / f"{name}-{port}.log", self.env(**env))


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("api"))
    await s.temporal.start_and_wait()
    await s.start_worker()
    yield s
    s.worker.stop()
    s.temporal.stop()


@pytest.fixture(scope="session")
async def storage(stack: Stack) -> AsyncIterator[StorageBackend]:
    backend = create_storage(stack.storage_settings)
    await backend.initialize()
    yield backend
    await backend.close()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def app(stack: Stack, storage: StorageBackend) -> AsyncIterator[FastAPI]:
    """The API in this process, sharing the stack's storage file and Temporal server."""
    settings = ServerSettings(agent_status_timeout=STATUS_TIMEOUT, dependency_retry_interval=0.5)
    application = create_app(
        settings,
        storage=storage,
        temporal_client=await stack.temporal.client(),
        job_settings=stack.settings,
    )
    async with running(application):
        yield application


def asgi_client(app: FastAPI, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ruckus", timeout=60, **kwargs
    )


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def fake_agent(stack: Stack) -> AsyncIterator[FakeAgent]:
    """A fake agent process whose jobs finish at once (not registered yet)."""
    agent = FakeAgent(stack.root, f"fake-{uuid.uuid4().hex[:8]}")
    await agent.start_and_wait()
    yield agent
    agent.stop()


# Helpers speaking the API


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def experiment_body(experiment_id: str | None = None, **params: Any) -> dict[str, Any]:
    """A tiny compute benchmark experiment, as POST /api/v1/experiments/ takes it."""
    return {
        "experiment_spec": {
            "id": experiment_id or unique("exp"),
            "name": "tiny matmul",
            "model": "none",
            "task": {
                "name": "matmul",
                "type": "compute_benchmark",
                "params": {"matrix_sizes": [32], "precision_types": ["fp32"], **params},
            },
        }
    }


async def register(http: httpx.AsyncClient, agent_url: str) -> str:
    response = await http.post("/api/v1/agents/register", json={"agent_url": agent_url})
    assert response.status_code == 200, response.text
    return str(response.json()["agent_id"])


async def create_experiment(http: httpx.AsyncClient, **params: Any) -> str:
    response = await http.post("/api/v1/experiments/", json=experiment_body(**params))
    assert response.status_code == 200, response.text
    return str(response.json()["experiment_id"])


async def create_job(http: httpx.AsyncClient, experiment_id: str, agent_id: str) -> JobInfo:
    body = {"experiment_id": experiment_id, "agent_id": agent_id}
    response = await http.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return JobInfo.model_validate(response.json())


async def wait_job(
    http: httpx.AsyncClient, job_id: str, *statuses: JobStatusEnum, timeout: float = 30.0
) -> JobInfo:
    """Poll GET /api/v1/jobs/{id} until the job has one of `statuses`."""

    async def reached() -> JobInfo | None:
        response = await http.get(f"/api/v1/jobs/{job_id}")
        response.raise_for_status()
        job = JobInfo.model_validate(response.json())
        return job if job.status.status in statuses else None

    names = "/".join(s.value for s in statuses)
    return await wait_until(reached, timeout, what=f"{job_id} to become {names}")


# The CLI tests' own API servers (one per module) and the `ruckus agent` processes a test starts.


@pytest.fixture(scope="module")
async def cli_api(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[HttpService]:
    process = stack.api_process(request.module.__name__.rsplit(".", 1)[-1])
    await process.start_and_wait()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def keyed_cli_api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("cli-keyed", RUCKUS_API_KEY=CLI_API_KEY)
    await process.start_and_wait()
    yield process
    process.stop()


@pytest.fixture
def cli_agents() -> Iterator[list[CliAgent]]:
    started: list[CliAgent] = []
    yield started
    for agent in started:
        agent.stop()
