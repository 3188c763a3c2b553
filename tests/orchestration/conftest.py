"""Fixtures for orchestration tests: a real dev server, real storage, a worker, agents."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from api.job_manager import JobManager
from common.agent_client import AgentUtility
from common.models import (
    JOB_LOGS_CAPABILITY,
    AgentStatusEnum,
    ExperimentCapabilityRequirements,
    ExperimentSpec,
    JobInfo,
    JobStatusEnum,
    RegisteredAgentInfo,
    TaskSpec,
    TaskType,
)
from common.settings import JobManagerSettings, StorageSettings
from common.storage import StorageBackend, create_storage
from tests.support.stack import FakeAgent, TemporalDevServer, wait_until
from workflows.worker import build_worker

FAST = {
    "job_status_polling_interval": 0.2,
    "agent_call_timeout": 2.0,
    "agent_retry_initial_interval": 0.1,
    "agent_retry_maximum_interval": 0.3,
    "agent_retry_maximum_attempts": 3,
    "busy_agent_recheck_initial": 0.2,
    "busy_agent_recheck_maximum": 0.5,
}


def fast_settings(**overrides: Any) -> JobManagerSettings:
    return JobManagerSettings(**{**FAST, "task_queue": f"test-{uuid.uuid4().hex[:8]}", **overrides})


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orchestration")


@pytest.fixture(scope="session")
async def temporal_server(workdir: Path) -> AsyncIterator[TemporalDevServer]:
    server = TemporalDevServer(workdir)
    await server.start_and_wait()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def client(temporal_server: TemporalDevServer) -> Client:
    return await temporal_server.client()


@pytest.fixture(scope="session")
async def storage(workdir: Path) -> AsyncIterator[StorageBackend]:
    backend = create_storage(StorageSettings(data_dir=workdir / "storage"))
    await backend.initialize()
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def settings() -> JobManagerSettings:
    return fast_settings()


@pytest.fixture(scope="session")
async def worker(
    client: Client, storage: StorageBackend, settings: JobManagerSettings
) -> AsyncIterator[None]:
    agents = AgentUtility(timeout=settings.agent_call_timeout)
    async with build_worker(client, storage, agents, settings):
        yield
    await agents.aclose()


@pytest.fixture(scope="session")
async def job_manager(
    client: Client, storage: StorageBackend, settings: JobManagerSettings, worker: None
) -> AsyncIterator[JobManager]:
    manager = JobManager(storage, client, settings)
    await manager.start()
    yield manager
    await manager.stop()


ManagerWith = Callable[..., JobManager]


@pytest.fixture
def manager_with(
    client: Client, storage: StorageBackend, settings: JobManagerSettings, worker: None
) -> ManagerWith:
    """A JobManager on the test worker whose settings differ by the overrides given."""

    def make(**overrides: Any) -> JobManager:
        return JobManager(storage, client, settings.model_copy(update=overrides))

    return make


@pytest.fixture
async def fake_agent(workdir: Path, storage: StorageBackend) -> AsyncIterator[FakeAgent]:
    agent = FakeAgent(workdir, f"fake-{uuid.uuid4().hex[:8]}")
    await agent.start_and_wait()
    await register(storage, agent.agent_id, agent.url, keeps_logs=True)
    yield agent
    agent.stop()


async def register(
    storage: StorageBackend,
    agent_id: str,
    url: str,
    status: AgentStatusEnum = AgentStatusEnum.IDLE,
    *,
    keeps_logs: bool = False,
) -> None:
    capabilities = {JOB_LOGS_CAPABILITY: True} if keeps_logs else {}
    await storage.register_agent(
        RegisteredAgentInfo(
            agent_id=agent_id, agent_url=url, status=status, capabilities=capabilities
        )
    )


async def new_experiment(
    storage: StorageBackend, timeout_seconds: int | None = None, **params: Any
) -> ExperimentSpec:
    spec = ExperimentSpec(
        name="tiny matmul",
        model="none",
        task=TaskSpec(
            name="matmul",
            type=TaskType.COMPUTE_BENCHMARK,
            params={"matrix_sizes": [32], "precision_types": ["fp32"], **params},
        ),
    )
    if timeout_seconds is not None:
        spec.capability_requirements = ExperimentCapabilityRequirements(
            timeout_seconds=timeout_seconds
        )
    return await storage.create_experiment(spec)


async def wait_for_status(
    storage: StorageBackend,
    job_id: str,
    *statuses: JobStatusEnum,
    timeout: float = 30.0,
) -> JobInfo:
    async def reached() -> JobInfo | None:
        job = await storage.get_job(job_id)
        return job if job.status.status in statuses else None

    names = "/".join(s.value for s in statuses)
    return await wait_until(reached, timeout, what=f"{job_id} to become {names}")


async def sets_holding(storage: StorageBackend, job: JobInfo) -> list[str]:
    """The names of the agent's sets that hold the job (exactly one, always)."""
    agent = job.agent_id
    running = await storage.get_running_job(agent)
    holding = []
    if running is not None and running.job_id == job.job_id:
        holding.append("running")
    for name, jobs in (
        ("queued", await storage.get_queued_jobs(agent)),
        ("completed", await storage.get_completed_jobs(agent)),
        ("failed", await storage.get_failed_jobs(agent)),
    ):
        if any(j.job_id == job.job_id for j in jobs):
            holding.append(name)
    return holding
