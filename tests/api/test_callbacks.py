"""A job ends as soon as its agent says so; when the word is lost, the timer-driven poll ends it.
Between polls, a run shows what its agents are doing now."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from common.callbacks import callback_token
from common.models import JobInfo, JobStatusEnum
from tests.api.conftest import Stack, create_experiment, create_job, register, wait_job
from tests.support.stack import FakeAgent, HttpService, ManagedProcess, free_port, wait_until

SECRET = "callback-secret-for-tests"
SLOW_POLL = 30.0  # far longer than any test waits: only a callback can end a job in time
RARE_POLL = 600.0  # a job's record changes only at its end
RUNNING = (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)


class CallbackStack:
    """A worker and an API on their own task queue, with callbacks on and a given poll interval."""

    def __init__(self, stack: Stack, polling: float, callback_base: str | None = None) -> None:
        port = free_port()
        queue = f"callbacks-{uuid.uuid4().hex[:8]}"
        env = stack.env(
            RUCKUS_TASK_QUEUE=queue,
            RUCKUS_JOB_STATUS_POLLING_INTERVAL=str(polling),
            RUCKUS_CALLBACK_BASE_URL=callback_base or f"http://127.0.0.1:{port}",
            RUCKUS_CALLBACK_SECRET=SECRET,
        )
        cmd = [sys.executable, "-m", "ruckus.cli"]
        self.worker = ManagedProcess([*cmd, "worker"], stack.root / f"{queue}-worker.log", env)
        self.api = HttpService(
            [*cmd, "api", "--port", str(port)], port, stack.root / f"{queue}-api.log", env
        )

    async def start(self) -> None:
        self.worker.start()
        await wait_until(lambda: "serving" in self.worker.output(), 60, what="the worker")
        await self.api.start_and_wait()

    def stop(self) -> None:
        self.api.stop()
        self.worker.stop()


@contextlib.asynccontextmanager
async def callback_api(
    stack: Stack, polling: float, callback_base: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an API (and its worker) with callbacks on, stopped afterwards."""
    cb = CallbackStack(stack, polling, callback_base)
    await cb.start()
    try:
        async with httpx.AsyncClient(base_url=cb.api.url, timeout=30) as http:
            yield http
    finally:
        cb.stop()


async def running_job(http: httpx.AsyncClient, agent: FakeAgent) -> JobInfo:
    """A job submitted through the API and running on `agent`."""
    agent_id = await register(http, agent.url)
    job = await create_job(http, await create_experiment(http), agent_id)
    await wait_job(http, job.job_id, *RUNNING)
    return job


@pytest.fixture
async def agent(stack: Stack) -> AsyncIterator[FakeAgent]:
    fake = FakeAgent(stack.root, f"cb-{uuid.uuid4().hex[:8]}")
    await fake.start_and_wait()
    await fake.control(job_duration=None)  # jobs end when the test says so
    yield fake
    fake.stop()


async def test_a_finished_job_is_completed_at_once_not_at_the_next_poll(
    stack: Stack, agent: FakeAgent
) -> None:
    async with callback_api(stack, polling=SLOW_POLL) as http:
        job = await running_job(http, agent)
        began = time.monotonic()
        await agent.finish(job.job_id)
        done = await wait_job(http, job.job_id, JobStatusEnum.COMPLETED, timeout=10)
        assert time.monotonic() - began < SLOW_POLL / 2  # not the timer: the callback
        assert (await http.get(f"/api/v1/results/{job.job_id}")).status_code == 200
        assert done.status.status is JobStatusEnum.COMPLETED
        log = await agent.log()
        assert [c["answer"] for c in log if c["call"] == "callback"] == [202]
        # The notification carried the final status: the agent was not asked again.
        assert not [e for e in log if e["call"] == "job_status"]


async def test_a_lost_notification_is_covered_by_the_poll(stack: Stack, agent: FakeAgent) -> None:
    # The agent is told a callback URL where nothing listens: the notification never arrives.
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with callback_api(stack, polling=1.0, callback_base=nowhere) as http:
        job = await running_job(http, agent)
        await agent.control(lose_callbacks=True)
        await agent.finish(job.job_id)
        await wait_job(http, job.job_id, JobStatusEnum.COMPLETED, timeout=20)
        assert not [e for e in await agent.log() if e["call"] == "callback"]


async def test_a_callback_needs_the_token_of_its_job(stack: Stack, agent: FakeAgent) -> None:
    async with callback_api(stack, polling=SLOW_POLL) as http:
        agent_id = await register(http, agent.url)
        job = await create_job(http, await create_experiment(http), agent_id)
        url = f"/api/v1/jobs/{job.job_id}/notify"
        other = callback_token(SECRET, "job_00000000")
        assert (await http.post(url)).status_code == 403
        assert (await http.post(url, params={"token": other})).status_code == 403
        # A valid token for a job that does not run gets the same answer as one that does:
        # nobody learns from it which jobs exist.
        unknown = "/api/v1/jobs/job_00000000/notify"
        answer = await http.post(unknown, params={"token": other})
        assert answer.status_code == 202, answer.text
        good = await http.post(url, params={"token": callback_token(SECRET, job.job_id)})
        assert good.status_code == 202
        assert (await http.get(f"/api/v1/jobs/{job.job_id}")).json()["status"]["status"] in (
            "queued",
            "assigned",
            "running",
        )  # a notification only makes the server ask the agent


async def test_a_notified_end_stands_only_once_the_agents_results_confirm_it(
    stack: Stack, agent: FakeAgent
) -> None:
    async with callback_api(stack, polling=SLOW_POLL) as http:
        job = await running_job(http, agent)
        url = f"/api/v1/jobs/{job.job_id}/notify"
        token = {"token": callback_token(SECRET, job.job_id)}

        def note(job_id: str, status: str) -> dict[str, object]:
            return {"job_id": job_id, "status": {"status": status, "message": "from the agent"}}

        # Another job's final status, then one that is not final: each time the workflow
        # asks the agent, which says the job still runs.
        for body, asked in (
            (note("job_00000000", "completed"), 1),
            (note(job.job_id, "running"), 2),
        ):
            answer = await http.post(url, params=token, json=body)
            assert answer.status_code == 202
            await wait_until(
                lambda n=asked: _asked(agent, job.job_id, n), 10, what="the agent to be asked"
            )
            still = (await http.get(f"/api/v1/jobs/{job.job_id}")).json()["status"]
            assert still["status"] in ("assigned", "running")
        # "Completed" while the agent still runs the job: its results do not confirm it, so the
        # job is not ended, no results are stored and the agent is not handed on.
        forged = await http.post(url, params=token, json=note(job.job_id, "completed"))
        assert forged.status_code == 202
        await wait_until(
            lambda: _asked_for_results(agent, job.job_id), 10, what="the results to be asked"
        )
        still = (await http.get(f"/api/v1/jobs/{job.job_id}")).json()["status"]
        assert still["status"] in ("assigned", "running")
        assert (await http.get(f"/api/v1/results/{job.job_id}")).status_code == 404
        # The agent's own end, notified, stands: its results say failed.
        await agent.control(lose_callbacks=True)
        await agent.finish(job.job_id, "failed")
        failed = await http.post(url, params=token, json=note(job.job_id, "failed"))
        assert failed.status_code == 202
        done = await wait_job(http, job.job_id, JobStatusEnum.FAILED, timeout=10)
        assert done.status.message == "from the agent"


async def _asked_for_results(agent: FakeAgent, job_id: str) -> bool:
    return any(e["call"] == "results" and e["job_id"] == job_id for e in await agent.log())


async def _asked(agent: FakeAgent, job_id: str, times: int) -> bool:
    log = await agent.log()
    return len([e for e in log if e["call"] == "job_status" and e["job_id"] == job_id]) >= times


async def test_between_polls_a_run_shows_what_its_agent_is_doing_now(
    stack: Stack, agent: FakeAgent
) -> None:
    async with callback_api(stack, polling=RARE_POLL) as http:
        agent_id = await register(http, agent.url)
        await agent.control(stage="warming up", progress=0.4)
        body = {"experiment_id": await create_experiment(http), "agents": [agent_id]}
        started = await http.post("/api/v1/runs", json=body)
        assert started.status_code == 201, started.text
        url = f"/api/v1/runs/{started.json()['run_id']}"

        async def job_now(stage: str) -> dict[str, object] | None:
            job = (await http.get(url, params={"live": "true"})).json()["jobs"][0]
            return job if job["status"].get("stage") == stage else None

        warming = await wait_until(lambda: job_now("warming up"), 30, what="the first stage")
        await agent.control(stage="measuring", progress=0.8)
        measuring = await wait_until(lambda: job_now("measuring"), 30, what="the next stage")
        stored = (await http.get(url)).json()["jobs"][0]
        await agent.finish(stored["job_id"])
        await wait_job(http, stored["job_id"], JobStatusEnum.COMPLETED, timeout=20)
        ended = (await http.get(url, params={"live": "true"})).json()

    assert warming["status"]["status"] == measuring["status"]["status"] == "running"
    assert (warming["status"]["progress"], measuring["status"]["progress"]) == (0.4, 0.8)
    # The record: the job as sent, for its workflow had not polled the agent.
    assert stored["status"]["status"] == "assigned" and stored["status"]["stage"] is None
    assert ended["jobs"][0]["status"]["status"] == "completed"


async def test_an_agent_that_registers_again_earns_its_trust_again(
    stack: Stack, agent: FakeAgent
) -> None:
    async with callback_api(stack, polling=SLOW_POLL) as http:
        agent_id = await register(http, agent.url)
        experiment_id = await create_experiment(http)

        async def announced_job() -> None:
            job = await create_job(http, experiment_id, agent_id)
            await wait_job(http, job.job_id, *RUNNING)
            await agent.finish(job.job_id)
            await wait_job(http, job.job_id, JobStatusEnum.COMPLETED, timeout=10)

        async def trusted() -> bool:
            info = (await http.get(f"/api/v1/agents/{agent_id}/info")).json()["agent"]
            return bool(info["notifies"])

        assert not await trusted()
        await announced_job()
        await wait_until(trusted, 10, what="the agent trusted after an announced end")
        # Restarted, perhaps as another build: until it announces an end, polls are as usual.
        assert await register(http, agent.url) == agent_id
        assert not await trusted()
        await announced_job()
        await wait_until(trusted, 10, what="the agent trusted again")
