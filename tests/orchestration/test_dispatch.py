"""How a new job meets its agent: the seed's process_job, step by step."""

from __future__ import annotations

from typing import Any, cast

from temporalio.client import Client

from api.job_manager import JobManager
from common.agent_client import AgentUtility
from common.models import AgentStatusEnum, JobInfo, JobStatus, JobStatusEnum
from common.storage import StorageBackend, StorageError
from tests.orchestration.conftest import (
    fast_settings,
    new_experiment,
    register,
    sets_holding,
    wait_for_status,
)
from tests.support.stack import FakeAgent, wait_until
from workflows.worker import build_worker

Q, A, R = JobStatusEnum.QUEUED, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING
DONE, FAILED = JobStatusEnum.COMPLETED, JobStatusEnum.FAILED


async def test_agent_registered_unavailable_fails_the_job(
    job_manager: JobManager, storage: StorageBackend
) -> None:
    await register(storage, "gone-agent", "http://127.0.0.1:9", AgentStatusEnum.UNAVAILABLE)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, "gone-agent")
    job = await wait_for_status(storage, job.job_id, FAILED)
    assert job.status.message == "agent unavailable"
    assert await sets_holding(storage, job) == ["failed"]


async def test_agent_status_call_failing_after_retries_fails_the_job(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(status_mode="error500")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    job = await wait_for_status(storage, job.job_id, FAILED)
    assert "get_agent_status failed" in job.status.message
    assert "HTTP 500" in job.status.message
    assert await sets_holding(storage, job) == ["failed"]
    # Nothing was sent, so no results were asked for either.
    assert [e["call"] for e in await fake_agent.log() if e["call"] != "status"] == []


async def test_unreachable_agent_fails_with_the_cause(
    job_manager: JobManager, storage: StorageBackend
) -> None:
    await register(storage, "nobody-home", "http://127.0.0.1:9")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, "nobody-home")
    job = await wait_for_status(storage, job.job_id, FAILED)
    assert "get_agent_status failed: cannot reach http://127.0.0.1:9" in job.status.message


async def test_agent_in_error_fails_the_job(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(agent_status="error")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    job = await wait_for_status(storage, job.job_id, FAILED)
    assert job.status.message == "agent reported status error"
    assert await fake_agent.executed() == []


async def test_busy_agent_queues_the_job_until_it_turns_idle(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(agent_status="active")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)

    async def busy() -> bool:
        j = await storage.get_job(job.job_id)
        return j.status.message == "agent busy with other work"

    await wait_until(busy, what="the job to wait for the busy agent")
    current = await storage.get_job(job.job_id)
    assert current.status.status is Q
    assert await sets_holding(storage, current) == ["queued"]
    assert await fake_agent.executed() == []

    await fake_agent.control(agent_status="auto")  # the outside work ends; nobody tells us
    done = await wait_for_status(storage, job.job_id, DONE)
    assert await sets_holding(storage, done) == ["completed"]
    assert await fake_agent.executed() == [job.job_id]


async def test_idle_agent_gets_the_job_recorded_as_its_running_job(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    running = await wait_for_status(storage, job.job_id, A, R)
    stored = await storage.get_running_job(fake_agent.agent_id)
    assert stored is not None and stored.job_id == job.job_id
    assert await sets_holding(storage, running) == ["running"]

    await fake_agent.finish(job.job_id)
    done = await wait_for_status(storage, job.job_id, DONE)
    assert await sets_holding(storage, done) == ["completed"]
    results = await storage.get_job_results(job.job_id)
    assert results["metrics"] == {"answer": 42}
    assert results["experiment_id"] == exp.id
    assert await storage.get_running_job(fake_agent.agent_id) is None


async def test_execute_rejected_fails_the_job(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(execute_mode="reject400")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    job = await wait_for_status(storage, job.job_id, FAILED)
    assert "execute_experiment failed" in job.status.message
    assert "HTTP 400" in job.status.message
    assert await sets_holding(storage, job) == ["failed"]
    # A 4xx is not retried.
    assert len(await fake_agent.executed()) == 1


async def test_a_job_whose_execute_answer_was_lost_runs_once_and_is_recorded_running(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None, lose_execute_answers=1)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    # The retry finds the agent busy with this very job: sent, not "busy with other work".
    await wait_until(
        lambda: _executed_twice(fake_agent),
        30,
        what="the job to be sent again after its lost answer",
    )
    running = await wait_for_status(storage, job.job_id, A, R)
    assert await sets_holding(storage, running) == ["running"]
    assert await fake_agent.executed() == [job.job_id, job.job_id]

    await fake_agent.finish(job.job_id)
    await wait_for_status(storage, job.job_id, DONE)


async def _executed_twice(agent: FakeAgent) -> bool:
    return len(await agent.executed()) >= 2


class RefusesFirstAssigned:
    """Storage that fails the first ASSIGNED write, as a database briefly locked would."""

    def __init__(self, inner: StorageBackend) -> None:
        self._inner = inner
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def record_job_status(self, job_id: str, status: JobStatus) -> JobInfo:
        if status.status is A and not self.refused:
            self.refused.append(job_id)
            raise StorageError("database is locked (injected)")
        return await self._inner.record_job_status(job_id, status)


async def test_an_assigned_record_storage_refuses_at_dispatch_is_written_by_the_job_itself(
    client: Client, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    settings = fast_settings()
    refusing = RefusesFirstAssigned(storage)
    agents = AgentUtility(timeout=settings.agent_call_timeout)
    manager = JobManager(storage, client, settings)
    async with build_worker(client, cast(StorageBackend, refusing), agents, settings):
        await fake_agent.control(job_duration=None)
        exp = await new_experiment(storage)
        job = await manager.create_job(exp.id, fake_agent.agent_id)
        # Nothing goes to the agent before its record: the job is sent once the job's own
        # durable write has succeeded.
        await wait_until(fake_agent.executed, 30, what="the job to be sent")
        running = await wait_for_status(storage, job.job_id, A, R)
        assert refusing.refused == [job.job_id]
        assert await sets_holding(storage, running) == ["running"]
        await fake_agent.finish(job.job_id)
        await wait_for_status(storage, job.job_id, DONE)
    await agents.aclose()
    assert await fake_agent.executed() == [job.job_id]
