"""Agents that answer garbage: the job fails naming the call, and the worker stays well."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from common.models import JobStatusEnum
from tests.security.conftest import (
    RESULTS_LIMIT,
    SecureStack,
    agent_client,
    api_client,
    assert_serves_a_job,
    create_experiment,
    register,
    start_job,
    tiny_experiment,
    unique,
    wait_end,
)
from tests.support.stack import FakeAgent, HttpService, wait_until

# (which answer misbehaves, how, what the failed job's message must say)
FAILURES = {
    "status garbage": (
        "status_mode",
        "garbage",
        "get_agent_status failed: the agent answered invalid JSON",
    ),
    "status wrong types": (
        "status_mode",
        "wrong_types",
        "get_agent_status failed: the agent answered an invalid AgentStatus",
    ),
    "status endless": (
        "status_mode",
        "endless",
        "get_agent_status failed: the agent's answer from",
    ),
    "status hangs": ("status_mode", "hang", "get_agent_status failed: timed out calling"),
    "execute garbage": (
        "execute_mode",
        "garbage",
        "execute_experiment failed: the agent answered invalid JSON",
    ),
    "execute endless": (
        "execute_mode",
        "endless",
        "execute_experiment failed: the agent's answer from",
    ),
    "job status wrong types": (
        "job_status_mode",
        "wrong_types",
        "get_job_status failed: the agent answered an invalid JobStatus",
    ),
    "job status endless": (
        "job_status_mode",
        "endless",
        "get_job_status failed: the agent's answer from",
    ),
    "job status hangs": ("job_status_mode", "hang", "get_job_status failed: timed out calling"),
}


@pytest.fixture(scope="module")
async def api_http(api: HttpService) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api) as http_:
        yield http_


async def misbehaving_job(
    secure: SecureStack, http_: httpx.AsyncClient, field: str, mode: str
) -> tuple[str, FakeAgent]:
    """A job on a fresh fake agent whose `field` answers in `mode` (running jobs last)."""
    fake = await secure.start_fake_agent(unique("fake"))
    await register(http_, fake.url)
    await fake.control(**{field: mode, "job_duration": None})
    job_id = await start_job(http_, await create_experiment(http_), fake.agent_id)
    return job_id, fake


async def test_garbage_answers_fail_the_job_naming_the_call(
    secure: SecureStack, api_http: httpx.AsyncClient, agent_id: str
) -> None:
    started = await asyncio.gather(
        *(misbehaving_job(secure, api_http, f, m) for f, m, _ in FAILURES.values())
    )
    ended = await asyncio.gather(*(wait_end(api_http, job_id, timeout=60) for job_id, _ in started))
    for name, job in zip(FAILURES, ended, strict=True):
        expected = FAILURES[name][2]
        assert job.status.status is JobStatusEnum.FAILED, (name, job.status)
        assert expected in job.status.message, (name, job.status.message)
        if "endless" in name:
            assert "larger than 1048576 bytes" in job.status.message, job.status.message
    # The worker is alive and serves a job on a good agent.
    assert secure.worker.alive()
    await assert_serves_a_job(api_http, agent_id)


async def test_endless_results_are_cut_off_and_the_worker_stays_well(
    secure: SecureStack, api_http: httpx.AsyncClient, agent_id: str
) -> None:
    job_id, fake = await misbehaving_job(secure, api_http, "results_mode", "endless")
    await wait_until(lambda: fake.executed(), 20, what="the job on the fake agent")
    await fake.finish(job_id)
    job = await wait_end(api_http, job_id)
    # The agent said the job completed; its endless results were not kept.
    assert job.status.status is JobStatusEnum.COMPLETED, job.status
    assert (await api_http.get(f"/api/v1/results/{job_id}")).status_code == 404
    worker = secure.worker
    await wait_until(
        lambda: f"larger than {RESULTS_LIMIT} bytes" in worker.output(),
        20,
        what="the worker to log the cut-off results",
    )
    assert f"get_experiment_results failed: the agent's answer from {fake.url}" in worker.output()
    assert worker.alive()
    await assert_serves_a_job(api_http, agent_id)


async def test_an_endless_callback_answer_leaves_the_agent_well(
    secure: SecureStack, agent: HttpService, api_http: httpx.AsyncClient, agent_id: str
) -> None:
    """A job's callback URL that answers forever: the agent does not read it, and runs on."""
    sink = await secure.start_fake_agent(unique("sink"))
    await sink.control(execute_mode="endless")
    job_id = f"job_{uuid.uuid4().hex[:10]}"
    job = {
        "job_id": job_id,
        "experiment_spec": tiny_experiment(),
        "callback_url": f"{sink.url}/api/v1/jobs",
    }
    async with agent_client(agent) as http_:
        assert (await http_.post("/api/v1/jobs", json=job)).status_code == 200

        async def notified() -> bool:
            return job_id in await sink.executed()

        await wait_until(notified, 30, what="the agent's callback")
        status = (await http_.get(f"/api/v1/status/{job_id}")).json()
        assert status["status"] == "completed", status

    async def hung_up() -> bool:
        async with httpx.AsyncClient(timeout=5) as control:
            return (await control.get(f"{sink.url}/control/streams")).json()["open"] == 0

    # The agent hung up on the endless answer instead of reading it into memory.
    await wait_until(hung_up, 10, what="the agent to hang up on the endless answer")
    await assert_serves_a_job(api_http, agent_id)
