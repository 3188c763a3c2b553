"""The fleet benchmark's agents speak the agent protocol: a real job runs on one of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from api.job_manager import JobManager
from bench.fleet_agent import Fleet, bound_socket, server
from common.models import (
    ExecuteJobRequest,
    ExperimentSpec,
    JobNotification,
    JobStatusEnum,
    TaskSpec,
    TaskType,
)
from common.storage import StorageBackend
from tests.orchestration.conftest import new_experiment, register, wait_for_status
from tests.support.stack import wait_until


@contextlib.asynccontextmanager
async def serving(fleet: Fleet) -> AsyncIterator[str]:
    """The fleet served in this process on a free port; its base URL."""
    sock = bound_socket(0)
    http_server = server(fleet)
    task = asyncio.create_task(http_server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def up() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/a/0/health")).status_code == 200
        return False

    try:
        await wait_until(up, 10, what="the fleet agents to answer")
        yield url
    finally:
        http_server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def fleet_url() -> AsyncIterator[str]:
    async with serving(Fleet(3, "fleet-test", seconds=0.3, notify=True)) as url:
        yield url


async def test_a_job_runs_to_completion_on_a_fleet_agent(
    job_manager: JobManager, storage: StorageBackend, fleet_url: str
) -> None:
    agent_url = f"{fleet_url}/a/2"
    await register(storage, "fleet-test-2", agent_url)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, "fleet-test-2")
    await wait_for_status(storage, job.job_id, JobStatusEnum.COMPLETED)
    assert await storage.get_job_results(job.job_id)
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{fleet_url}/bench/log")).json()[job.job_id]
        idle = (await http.get(f"{agent_url}/api/v1/status")).json()
    assert seen["agent"] == 2
    assert seen["finished"] is not None and seen["polls"]
    assert idle["status"] == "idle"


async def test_a_fleet_agent_posts_the_end_to_the_jobs_callback() -> None:
    received: list[tuple[str, JobNotification]] = []
    receiver = FastAPI()

    @receiver.post("/api/v1/jobs/{job_id}/notify")
    async def notify(job_id: str, request: Request) -> dict[str, str]:
        body = JobNotification.model_validate(await request.json())
        received.append((request.url.query, body))
        return {"status": "ok"}

    sock = bound_socket(0)
    api = uvicorn.Server(uvicorn.Config(receiver, log_level="warning"))
    api_task = asyncio.create_task(api.serve(sockets=[sock]))
    callback = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/jobs/j-1/notify?token=abc"
    try:
        async with serving(Fleet(1, "fleet-cb", seconds=0.1, notify=True)) as url:
            exp = ExperimentSpec(
                name="cb", model="none", task=TaskSpec(name="m", type=TaskType.COMPUTE_BENCHMARK)
            )
            request = ExecuteJobRequest(experiment_spec=exp, job_id="j-1", callback_url=callback)
            async with httpx.AsyncClient() as http:
                sent = await http.post(
                    f"{url}/a/0/api/v1/jobs", json=request.model_dump(mode="json")
                )
            assert sent.status_code == 200
            await wait_until(lambda: received, 10, what="the notification")
    finally:
        api.should_exit = True
        await api_task
        sock.close()
    [(query, body)] = received
    assert query == "token=abc"
    assert body.job_id == "j-1"
    assert body.status.status is JobStatusEnum.COMPLETED
