"""Agents: registration, live status, and unregistering with its jobs cancelled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from common.models import JobStatusEnum
from tests.api.conftest import (
    Stack,
    create_experiment,
    create_job,
    register,
    wait_job,
)
from tests.support.stack import FakeAgent, wait_until

RUNNING = (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)


@pytest.fixture
async def three_agents(stack: Stack) -> AsyncIterator[list[FakeAgent]]:
    agents = [FakeAgent(stack.root, f"trio-{uuid.uuid4().hex[:8]}") for _ in range(3)]
    for agent in agents:
        await agent.start_and_wait()
    yield agents
    for agent in agents:
        agent.kill()  # a hung request would hold a graceful stop for its full timeout


async def test_registration_records_the_agents_own_info(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    r = await http.post("/api/v1/agents/register", json={"agent_url": fake_agent.url + "/"})
    assert r.status_code == 200
    assert r.json()["agent_id"] == fake_agent.agent_id
    assert r.json()["registered_at"]

    info = (await http.get(f"/api/v1/agents/{fake_agent.agent_id}/info")).json()["agent"]
    assert info["agent_url"] == fake_agent.url
    assert info["agent_name"] == "fake"
    registered = datetime.fromisoformat(r.json()["registered_at"])
    assert datetime.fromisoformat(info["registered_at"]) == registered
    listed = (await http.get("/api/v1/agents/")).json()["agents"]
    assert fake_agent.agent_id in [a["agent_id"] for a in listed]


async def test_unregistering_cancels_the_agents_jobs_and_keeps_their_history(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)  # the first job holds the agent
    agent_id = await register(http, fake_agent.url)
    experiment_id = await create_experiment(http)
    jobs = [await create_job(http, experiment_id, agent_id) for _ in range(3)]
    await wait_job(http, jobs[0].job_id, *RUNNING)
    for queued in jobs[1:]:
        assert (await wait_job(http, queued.job_id, JobStatusEnum.QUEUED)).job_id

    r = await http.post("/api/v1/agents/unregister", json={"agent_id": agent_id})
    assert r.status_code == 200
    assert sorted(r.json()["cancelled_jobs"]) == sorted(j.job_id for j in jobs)

    for job in jobs:
        await wait_job(http, job.job_id, JobStatusEnum.CANCELLED)
    assert (await http.get(f"/api/v1/agents/{agent_id}/info")).status_code == 404
    agents = (await http.get("/api/v1/agents/")).json()["agents"]
    assert agent_id not in [a["agent_id"] for a in agents]
    history = (await http.get("/api/v1/jobs", params={"agent_id": agent_id})).json()["jobs"]
    assert sorted(j["job_id"] for j in history[agent_id]) == sorted(j.job_id for j in jobs)
    # The running job was stopped on the agent; the queued ones never reached it.
    assert await fake_agent.executed() == [jobs[0].job_id]
    # Registering it again works: the agent is new to the server, its history is not lost.
    assert await register(http, fake_agent.url) == agent_id


async def test_an_unreachable_agent_shows_unavailable_and_is_recorded_so(
    http: httpx.AsyncClient, three_agents: list[FakeAgent]
) -> None:
    up, down, hung = three_agents
    for agent in three_agents:
        await register(http, agent.url)
    down.stop()
    await hung.control(status_mode="hang")

    r = await http.get(f"/api/v1/agents/{down.agent_id}/status")
    assert r.status_code == 200
    assert (r.json()["agent"]["agent_id"], r.json()["agent"]["status"]) == (
        down.agent_id,
        "unavailable",
    )
    info = (await http.get(f"/api/v1/agents/{down.agent_id}/info")).json()["agent"]
    assert info["status"] == "unavailable"

    statuses = (await http.get("/api/v1/agents/status")).json()["agents"]
    by_id = {s["agent_id"]: s["status"] for s in statuses}
    assert by_id[up.agent_id] == "idle"
    assert by_id[down.agent_id] == "unavailable"
    assert by_id[hung.agent_id] == "unavailable"


async def test_live_status_is_asked_of_every_agent_at_once(
    http: httpx.AsyncClient, three_agents: list[FakeAgent]
) -> None:
    for agent in three_agents:
        await register(http, agent.url)
        await agent.control(status_mode="hang")
    statuses = (await http.get("/api/v1/agents/status")).json()["agents"]
    hung = {a.agent_id for a in three_agents}
    assert {s["agent_id"]: s["status"] for s in statuses if s["agent_id"] in hung} == dict.fromkeys(
        hung, "unavailable"
    )

    async def calls(name: str) -> list[str]:
        logs = [await agent.log() for agent in three_agents]
        return [e["at"] for log in logs for e in log if e["call"] == name]

    # Three agents that never answer cost one timeout, not three: each was asked before the
    # server gave up on any of them.
    async def all_abandoned() -> bool:
        return len(await calls("status_abandoned")) == 3

    await wait_until(all_abandoned, what="the server to give up on each call")
    asked, abandoned = await calls("status_asked"), await calls("status_abandoned")
    assert len(asked) == 3
    assert max(map(datetime.fromisoformat, asked)) < min(map(datetime.fromisoformat, abandoned))


async def test_a_job_for_an_agent_back_from_unavailable_runs(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    agent = FakeAgent(stack.root, f"phoenix-{uuid.uuid4().hex[:8]}")
    await agent.start_and_wait()
    try:
        agent_id = await register(http, agent.url)
        await agent.control(status_mode="error500")
        status = (await http.get(f"/api/v1/agents/{agent_id}/status")).json()["agent"]
        assert status["status"] == "unavailable"
        await agent.control(status_mode="ok")
        job = await create_job(http, await create_experiment(http), agent_id)
        await wait_job(http, job.job_id, JobStatusEnum.COMPLETED)
    finally:
        agent.stop()
