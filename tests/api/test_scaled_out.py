"""Two API servers and two workers on PostgreSQL: a job's end reaches a live API server while
the other is down, the queue's order is the order storage reports, and a worker's crash
loses nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from activities.agent_queue import QueueSnapshot, queue_workflow_id
from common.models import JobStatusEnum
from common.settings import StorageSettings
from common.storage import StorageBackend, create_storage
from tests.api.conftest import FAST, Stack, create_experiment, register, unique, wait_job
from tests.storage.conftest import PG_HOST, PG_PORT, PG_USER
from tests.support.processes import AgentProcess
from tests.support.stack import FakeAgent, HttpService, ManagedProcess, free_port, wait_until

SLOW_POLL = 60.0  # far longer than the test waits: only a callback ends a job in time
S = JobStatusEnum


class Fleet:
    """Two API servers and two workers on one PostgreSQL database and task queue."""

    def __init__(self, stack: Stack, root: Path, database_url: str, polling: float) -> None:
        self.ports = [free_port(), free_port()]
        self.queue = f"fleet-{secrets.token_hex(4)}"
        env = {
            "TEMPORAL_ADDRESS": stack.temporal.address,
            "RUCKUS_STORAGE_DATABASE_URL": database_url,
            "RUCKUS_TASK_QUEUE": self.queue,
            **{f"RUCKUS_{k.upper()}": str(v) for k, v in FAST.items()},
            "RUCKUS_JOB_STATUS_POLLING_INTERVAL": str(polling),
            "RUCKUS_CALLBACK_BASE_URL": ",".join(f"http://127.0.0.1:{p}" for p in self.ports),
        }
        cmd = [sys.executable, "-m", "ruckus.cli"]
        self.workers = [
            ManagedProcess([*cmd, "worker"], root / f"worker-{n}.log", env) for n in range(2)
        ]
        self.apis = [
            HttpService([*cmd, "api", "--port", str(port)], port, root / f"api-{port}.log", env)
            for port in self.ports
        ]

    async def start(self) -> None:
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            await wait_until(lambda w=worker: "serving" in w.output(), 60, what="a worker")
        for api in self.apis:
            await api.start_and_wait()

    def stop(self) -> None:
        for process in (*self.apis, *self.workers):
            process.stop()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"ruckus_fleet_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def fleet(
    stack: Stack, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> AsyncIterator[Fleet]:
    """Polling slow enough that only a callback ends a job in time, unless a test asks."""
    polling = getattr(request, "param", SLOW_POLL)
    f = Fleet(stack, tmp_path, database, polling)
    await f.start()
    yield f
    f.stop()


@pytest.fixture
async def fleet_storage(database: str) -> AsyncIterator[StorageBackend]:
    storage = create_storage(StorageSettings(database_url=database))
    await storage.initialize()
    yield storage
    await storage.close()


async def test_a_jobs_end_reaches_the_api_server_that_is_up(fleet: Fleet, tmp_path: Path) -> None:
    origins = json.dumps([f"http://127.0.0.1:{p}" for p in fleet.ports])
    agent = AgentProcess(
        tmp_path / "agent",
        settings={"agent_id": unique("agent"), "callback_origins": origins},
        log_path=tmp_path / "agent.log",
    )
    with agent:
        fleet.apis[0].stop()  # the first API server in the callback list is down
        async with httpx.AsyncClient(base_url=fleet.apis[1].url, timeout=30) as http:
            agent_id = await register(http, agent.url)
            experiment_id = await create_experiment(http)
            body = {"experiment_id": experiment_id, "agent_id": agent_id}
            job = (await http.post("/api/v1/jobs", json=body)).json()
            began = time.monotonic()
            await wait_job(http, job["job_id"], S.COMPLETED, timeout=SLOW_POLL / 2)
            assert time.monotonic() - began < SLOW_POLL / 2  # the callback, not the poll


@pytest.mark.parametrize("fleet", [FAST["job_status_polling_interval"]], indirect=True)
async def test_submissions_through_two_api_servers_queue_in_the_order_storage_reports(
    fleet: Fleet, fleet_storage: StorageBackend, stack: Stack, tmp_path: Path
) -> None:
    fake = FakeAgent(tmp_path, unique("fake"))
    await fake.start_and_wait()
    try:
        await fake.control(job_duration=None)
        clients = [httpx.AsyncClient(base_url=api.url, timeout=60) for api in fleet.apis]
        agent_id = await register(clients[0], fake.url)
        experiment_id = await create_experiment(clients[0])
        body = {"experiment_id": experiment_id, "agent_id": agent_id}
        first = (await clients[0].post("/api/v1/jobs", json=body)).json()["job_id"]
        await wait_until(fake.executed, 30, what="the first job on the agent")
        answers = await asyncio.gather(
            *(clients[n % 2].post("/api/v1/jobs", json=body) for n in range(10))
        )
        assert [a.status_code for a in answers] == [201] * 10
        stored = [j.job_id for j in await fleet_storage.get_queued_jobs(agent_id)]
        handle = (await stack.temporal.client()).get_workflow_handle(queue_workflow_id(agent_id))
        snapshot = QueueSnapshot.model_validate(await handle.query("snapshot"))
        assert snapshot.running == first
        assert snapshot.queued == stored  # one order, whichever server took the job

        # A worker crashes while the queue drains: the other finishes every job, in that order.
        await fake.control(job_duration=0.05)
        fleet.workers[0].kill()
        await fake.finish(first)
        for job_id in stored:
            await wait_job(clients[1], job_id, S.COMPLETED, timeout=120)
        executed = await fake.executed()
        assert executed == [first, *stored]
        for client in clients:
            await client.aclose()
    finally:
        fake.stop()
