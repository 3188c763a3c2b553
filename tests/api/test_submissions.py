"""A submission means one job, or none: retries with a key make no second job, a start that
cannot be confirmed never runs, no record lacks its workflow, and callbacks cannot be forged."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus

from api.app import create_app
from common.models import JobInfo, JobStatusEnum
from common.settings import JobManagerSettings, ServerSettings
from common.storage import StorageBackend
from tests.api.conftest import (
    Stack,
    asgi_client,
    create_experiment,
    experiment_body,
    register,
    running,
    wait_job,
)
from tests.support.stack import FakeAgent, ManagedProcess, wait_until

KEY = "Idempotency-Key"


class OwnWorker:
    """A worker process on its own task queue, which a test may pause and resume."""

    def __init__(self, stack: Stack) -> None:
        self.queue = f"own-{uuid.uuid4().hex[:8]}"
        self.settings = stack.settings.model_copy(update={"task_queue": self.queue})
        env = stack.env(RUCKUS_TASK_QUEUE=self.queue)
        self.process = ManagedProcess(
            [sys.executable, "-m", "ruckus.cli", "worker"], stack.root / f"{self.queue}.log", env
        )

    async def start(self) -> None:
        self.process.start()
        await wait_until(lambda: "serving" in self.process.output(), 60, what="the worker")

    def pause(self) -> None:
        assert self.process.proc is not None
        self.process.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process.proc is not None
        self.process.proc.send_signal(signal.SIGCONT)


@pytest.fixture
async def own_worker(stack: Stack) -> AsyncIterator[OwnWorker]:
    worker = OwnWorker(stack)
    await worker.start()
    yield worker
    worker.resume()
    worker.process.stop()


@asynccontextmanager
async def api_on(
    stack: Stack,
    storage: StorageBackend,
    job_settings: JobManagerSettings,
    **server: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An API in this process with these settings, on the stack's storage and Temporal."""
    app: FastAPI = create_app(
        ServerSettings(**server),
        storage=storage,
        temporal_client=await stack.temporal.client(),
        job_settings=job_settings,
    )
    async with running(app), asgi_client(app) as http:
        yield http


def job_body(experiment_id: str, agent_id: str) -> dict[str, str]:
    return {"experiment_id": experiment_id, "agent_id": agent_id}


async def jobs_of(http: httpx.AsyncClient, experiment_id: str) -> list[str]:
    answer = await http.get("/api/v1/jobs", params={"experiment_id": experiment_id})
    return [j["job_id"] for jobs in answer.json()["jobs"].values() for j in jobs]


# Idempotency-Key


async def test_concurrent_submissions_with_one_key_make_one_job(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    agent_id = await register(http, fake_agent.url)
    experiment_id = await create_experiment(http)
    headers = {KEY: f"submit-{uuid.uuid4().hex}"}
    answers = await asyncio.gather(
        *(
            http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id), headers=headers)
            for _ in range(5)
        )
    )
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    job_ids = {a.json()["job_id"] for a in answers}
    assert len(job_ids) == 1
    (job_id,) = job_ids
    await wait_job(http, job_id, JobStatusEnum.COMPLETED)
    # Later repeats get the first answer, and still no second job.
    again = await http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id), headers=headers)
    assert again.status_code == 201 and again.json() == answers[0].json()
    assert await jobs_of(http, experiment_id) == [job_id]
    assert await fake_agent.executed() == [job_id]


async def test_a_key_sent_with_another_body_is_refused_naming_the_header(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    agent_id = await register(http, fake_agent.url)
    first, second = await create_experiment(http), await create_experiment(http)
    headers = {KEY: f"submit-{uuid.uuid4().hex}"}
    ok = await http.post("/api/v1/jobs", json=job_body(first, agent_id), headers=headers)
    assert ok.status_code == 201
    other = await http.post("/api/v1/jobs", json=job_body(second, agent_id), headers=headers)
    assert other.status_code == 422
    (error,) = other.json()["detail"]
    assert error["loc"] == ["header", KEY]
    assert await jobs_of(http, second) == []
    # Nor does the key serve another endpoint.
    reused = await http.post("/api/v1/experiments/", json=experiment_body(), headers=headers)
    assert reused.status_code == 422


async def test_an_experiment_submitted_twice_with_one_key_is_made_once(
    http: httpx.AsyncClient,
) -> None:
    body = experiment_body()
    del body["experiment_spec"]["id"]  # the server draws the id: a repeat must not draw again
    headers = {KEY: f"exp-{uuid.uuid4().hex}"}
    answers = await asyncio.gather(
        *(http.post("/api/v1/experiments/", json=body, headers=headers) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert len({a.json()["experiment_id"] for a in answers}) == 1
    listed = (await http.get("/api/v1/experiments/")).json()["experiments"]
    made = [e for e in listed if e["id"] == answers[0].json()["experiment_id"]]
    assert len(made) == 1


async def test_a_client_that_timed_out_and_retried_with_its_key_gets_one_job(
    stack: Stack, fake_agent: FakeAgent, http: httpx.AsyncClient
) -> None:
    api = stack.api_process("retries")
    await api.start_and_wait()
    try:
        agent_id = await register(http, fake_agent.url)
        experiment_id = await create_experiment(http)
        body, headers = job_body(experiment_id, agent_id), {KEY: f"k-{uuid.uuid4().hex}"}
        # The client gives up long before the server answers; its retry carries the same key.
        async with httpx.AsyncClient(base_url=api.url, timeout=0.02) as impatient:
            with pytest.raises(httpx.TimeoutException):
                await impatient.post("/api/v1/jobs", json=body, headers=headers)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as patient:
            retried = await patient.post("/api/v1/jobs", json=body, headers=headers)
        assert retried.status_code == 201, retried.text
        job_id = retried.json()["job_id"]
        await wait_job(http, job_id, JobStatusEnum.COMPLETED)
        assert await jobs_of(http, experiment_id) == [job_id]
        assert await fake_agent.executed() == [job_id]
    finally:
        api.stop()


# One truth about a submission


async def test_a_start_the_worker_cannot_confirm_is_refused_in_time_and_never_runs(
    stack: Stack, storage: StorageBackend, fake_agent: FakeAgent, own_worker: OwnWorker
) -> None:
    settings = own_worker.settings.model_copy(update={"submission_timeout": 3.0})
    async with api_on(stack, storage, settings) as http:
        agent_id = await register(http, fake_agent.url)
        experiment_id = await create_experiment(http)
        own_worker.pause()
        answer = await http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id))
        assert answer.status_code == 503, answer.text
        assert "will not run" in answer.json()["detail"]
        found = re.search(r"job (job_\d+)", answer.json()["detail"])
        assert found, answer.text
        job_id = found.group(1)
        refused = JobInfo.model_validate((await http.get(f"/api/v1/jobs/{job_id}")).json())
        assert refused.status.status is JobStatusEnum.FAILED

        own_worker.resume()
        handle = (await stack.temporal.client()).get_workflow_handle(job_id)

        async def closed() -> bool:
            described = await handle.describe()
            return described.status is not WorkflowExecutionStatus.RUNNING

        await wait_until(closed, 60, what="the refused job's workflow to end")
        # The record and the workflow agree: it never ran, and it stays failed.
        assert job_id not in await fake_agent.executed()
        assert (await http.get(f"/api/v1/jobs/{job_id}")).json()["status"]["status"] == "failed"
        assert (await http.delete(f"/api/v1/jobs/{job_id}")).status_code == 409
        # The agent is free for the next job.
        later = await http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id))
        assert later.status_code == 201, later.text
        await wait_job(http, later.json()["job_id"], JobStatusEnum.COMPLETED)


async def test_an_api_killed_mid_submission_leaves_no_record_without_its_workflow(
    stack: Stack, storage: StorageBackend, fake_agent: FakeAgent, own_worker: OwnWorker
) -> None:
    api = stack.api_process("killed", RUCKUS_TASK_QUEUE=own_worker.queue)
    await api.start_and_wait()
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        agent_id = await register(http, fake_agent.url)
        experiment_id = await create_experiment(http)
        own_worker.pause()
        submissions = [
            asyncio.create_task(http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id)))
            for _ in range(3)
        ]
        client = await stack.temporal.client()
        query = f'RuckusExperimentId="{experiment_id}"'

        async def started() -> bool:
            return len([w async for w in client.list_workflows(query)]) == 3

        await wait_until(started, 30, what="the three workflows to start")
        # Nothing is recorded before the workflow does it: the API holds no record to lose.
        assert await storage.list_jobs(experiment_id=experiment_id) == []
        api.kill()
        for task in submissions:
            with pytest.raises(httpx.HTTPError):
                await task
    own_worker.resume()
    # Every workflow records its job and runs it; every record has its workflow.
    job_ids = [w.id async for w in client.list_workflows(query)]
    for job_id in job_ids:

        async def done(job_id: str = job_id) -> bool:
            job = await storage.get_job(job_id)
            return job.status.status is JobStatusEnum.COMPLETED

        await wait_until(done, 60, what=f"{job_id} to complete")
    stored = await storage.list_jobs(experiment_id=experiment_id)
    assert sorted(j.job_id for j in stored) == sorted(job_ids)
    assert sorted(await fake_agent.executed()) == sorted(job_ids)


# Callbacks


async def test_a_forged_completion_is_refused_even_with_no_secret_configured(
    stack: Stack, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    api_key = "a-key-for-users"
    settings = stack.settings.model_copy(update={"callback_secret": None})
    async with api_on(stack, storage, settings, api_key=SecretStr(api_key)) as http:
        http.headers["Authorization"] = f"Bearer {api_key}"
        await fake_agent.control(job_duration=None)
        agent_id = await register(http, fake_agent.url)
        experiment_id = await create_experiment(http)
        created = await http.post("/api/v1/jobs", json=job_body(experiment_id, agent_id))
        job_id = created.json()["job_id"]
        await wait_job(http, job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
        forged = {"job_id": job_id, "status": {"status": "completed", "message": "forged"}}
        url = f"/api/v1/jobs/{job_id}/notify"
        assert (await http.post(url, json=forged)).status_code == 403
        assert (await http.post(url, json=forged, params={"token": "0" * 64})).status_code == 403
        job = (await http.get(f"/api/v1/jobs/{job_id}")).json()
        assert job["status"]["status"] in ("assigned", "running")
        await fake_agent.finish(job_id)
        await wait_job(http, job_id, JobStatusEnum.COMPLETED)
