"""The whole path through a real `ruckus api` process, and a restart of that process."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from common.models import JobStatusEnum
from tests.api.conftest import Stack, create_experiment, create_job, register, wait_job
from tests.support.stack import FakeAgent, HttpService, free_port


@pytest.fixture(scope="module")
async def real_agent(stack: Stack) -> AsyncIterator[HttpService]:
    port = free_port()
    agent = HttpService(
        [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(port)],
        port,
        stack.root / "real-agent.log",
        {"RUCKUS_AGENT_DATA_DIR": str(stack.root / "real-agent")},
    )
    await agent.start_and_wait()
    yield agent
    agent.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process()
    await process.start_and_wait()
    yield process
    process.stop()


async def test_register_create_run_and_read_the_results(
    api: HttpService, real_agent: HttpService
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        agent_id = await register(http, real_agent.url)
        experiment_id = await create_experiment(http)
        job = await create_job(http, experiment_id, agent_id)
        assert job.status.status is JobStatusEnum.QUEUED
        assert (job.experiment_id, job.agent_id) == (experiment_id, agent_id)

        done = await wait_job(http, job.job_id, JobStatusEnum.COMPLETED, timeout=60)
        assert done.created_time == job.created_time

        result = (await http.get(f"/api/v1/results/{job.job_id}")).json()["result"]
        assert result["job_id"] == job.job_id and result["status"] == "completed"
        assert result["metrics"], result
        results = await http.get("/api/v1/results", params={"experiment_id": experiment_id})
        assert [r["job_id"] for r in results.json()["results"]] == [job.job_id]

        grouped = (await http.get("/api/v1/jobs", params={"agent_id": agent_id})).json()["jobs"]
        assert [j["job_id"] for j in grouped[agent_id]] == [job.job_id]
        status = (await http.get(f"/api/v1/agents/{agent_id}/status")).json()["agent"]
        assert status["status"] == "idle"
        info = (await http.get(f"/api/v1/agents/{agent_id}/info")).json()["agent"]
        assert info["capabilities"]["task_types"]


async def test_a_restart_of_the_api_loses_nothing(stack: Stack, fake_agent: FakeAgent) -> None:
    first = stack.api_process("restart")
    await first.start_and_wait()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
            agent_id = await register(http, fake_agent.url)
            experiment_id = await create_experiment(http)
            finished = await create_job(http, experiment_id, agent_id)
            await wait_job(http, finished.job_id, JobStatusEnum.COMPLETED)
            await fake_agent.control(job_duration=None)
            running = await create_job(http, experiment_id, agent_id)
            await wait_job(http, running.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    finally:
        first.stop()
    # uvicorn re-raises SIGTERM once its shutdown is complete.
    assert first.proc is not None and first.proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in first.output(), first.output()[-2000:]

    second = stack.api_process("restart")
    await second.start_and_wait()
    try:
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as http:
            agents = (await http.get("/api/v1/agents/")).json()["agents"]
            assert agent_id in [a["agent_id"] for a in agents]
            experiments = (await http.get("/api/v1/experiments/")).json()["experiments"]
            assert experiment_id in [e["id"] for e in experiments]
            jobs = (await http.get("/api/v1/jobs", params={"agent_id": agent_id})).json()["jobs"]
            assert [j["job_id"] for j in jobs[agent_id]] == [running.job_id, finished.job_id]
            result = (await http.get(f"/api/v1/results/{finished.job_id}")).json()["result"]
            assert result["status"] == "completed"
            # The job that was running when the API stopped is still followed and can end.
            await fake_agent.finish(running.job_id)
            await wait_job(http, running.job_id, JobStatusEnum.COMPLETED)
            assert (await http.get(f"/api/v1/results/{running.job_id}")).status_code == 200
    finally:
        second.stop()
