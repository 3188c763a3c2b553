"""100 job submissions at once across 5 agents: all accepted, all finished."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.conftest import Stack, create_experiment, register
from tests.support.stack import FakeAgent, wait_until

AGENTS = 5
JOBS = 100


@pytest.fixture
async def five_agents(stack: Stack) -> AsyncIterator[list[FakeAgent]]:
    agents = [FakeAgent(stack.root, f"load-{uuid.uuid4().hex[:8]}") for _ in range(AGENTS)]
    await asyncio.gather(*(a.start_and_wait() for a in agents))
    for agent in agents:
        await agent.control(job_duration=0.01)
    yield agents
    for agent in agents:
        agent.stop()


async def test_a_hundred_concurrent_submissions_are_all_accepted_and_all_complete(
    http: httpx.AsyncClient, five_agents: list[FakeAgent]
) -> None:
    agent_ids = [await register(http, a.url) for a in five_agents]
    experiment_id = await create_experiment(http)
    bodies = [
        {"experiment_id": experiment_id, "agent_id": agent_ids[i % AGENTS]} for i in range(JOBS)
    ]

    started = time.monotonic()
    answers = await asyncio.gather(*(http.post("/api/v1/jobs", json=b) for b in bodies))
    accepted = time.monotonic() - started
    assert [r.status_code for r in answers] == [201] * JOBS, [
        r.text for r in answers if r.status_code != 201
    ][:3]
    job_ids = {r.json()["job_id"] for r in answers}
    assert len(job_ids) == JOBS

    async def all_completed() -> bool:
        r = await http.get(
            "/api/v1/jobs",
            params={"experiment_id": experiment_id, "status": "completed", "limit": 1000},
        )
        return sum(len(jobs) for jobs in r.json()["jobs"].values()) == JOBS

    await wait_until(all_completed, 120, interval=0.5, what=f"{JOBS} jobs to complete")
    finished = time.monotonic() - started
    print(f"\n{JOBS} jobs, {AGENTS} agents: accepted in {accepted:.1f} s, done in {finished:.1f} s")

    grouped = (
        await http.get("/api/v1/jobs", params={"experiment_id": experiment_id, "limit": 1000})
    ).json()["jobs"]
    assert Counter({a: len(j) for a, j in grouped.items()}) == Counter(
        dict.fromkeys(agent_ids, JOBS // AGENTS)
    )
    # Each job ran exactly once, on its own agent.
    executed = [await a.executed() for a in five_agents]
    assert sorted(j for e in executed for j in e) == sorted(job_ids)
    results = (await http.get("/api/v1/results", params={"experiment_id": experiment_id})).json()[
        "results"
    ]
    assert {r["job_id"] for r in results} == job_ids
