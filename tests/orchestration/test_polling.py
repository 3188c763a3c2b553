"""What each poll of a running job does with the agent's answer."""

from __future__ import annotations

import pytest

from api.job_manager import JobManager
from common.models import JobStatusEnum
from common.settings import JobManagerSettings
from common.storage import NotFoundError, StorageBackend
from tests.orchestration.conftest import (
    ManagerWith,
    new_experiment,
    sets_holding,
    wait_for_status,
)
from tests.support.stack import FakeAgent, wait_until

DONE, FAILED = JobStatusEnum.COMPLETED, JobStatusEnum.FAILED


@pytest.mark.parametrize("ending", ["failed", "cancelled", "timeout"])
async def test_agent_reported_failure_goes_to_the_failed_set_with_its_results(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, ending: str
) -> None:
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, job.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    await fake_agent.finish(job.job_id, ending)
    ended = await wait_for_status(storage, job.job_id, JobStatusEnum(ending))
    assert await sets_holding(storage, ended) == ["failed"]
    assert (await storage.get_job_results(job.job_id))["status"] == ending
    # The agent is released: the next job runs.
    await fake_agent.control(job_duration=0.0)
    nxt = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, nxt.job_id, DONE)


async def test_agent_saying_queued_is_polled_and_never_sent_again(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None, job_report="queued")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)

    async def polled_three_times() -> bool:
        return len([e for e in await fake_agent.log() if e["call"] == "job_status"]) >= 3

    await wait_until(polled_three_times, what="three polls answered 'queued'")
    assert (await storage.get_job(job.job_id)).status.status is JobStatusEnum.ASSIGNED
    await fake_agent.control(job_report=None)
    await fake_agent.finish(job.job_id)
    await wait_for_status(storage, job.job_id, DONE)
    assert await fake_agent.executed() == [job.job_id]


async def test_results_call_failing_leaves_the_job_completed(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(results_mode="error500")
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    done = await wait_for_status(storage, job.job_id, DONE)
    assert await sets_holding(storage, done) == ["completed"]
    with pytest.raises(NotFoundError):
        await storage.get_job_results(job.job_id)


async def test_agent_forgetting_the_job_fails_it_with_a_clear_message(
    storage: StorageBackend, fake_agent: FakeAgent, manager_with: ManagerWith
) -> None:
    # Retries that outlast the agent's restart, however slow the machine; no second sending.
    job_manager = manager_with(
        agent_retry_maximum_attempts=100,
        agent_retry_maximum_interval=0.5,
        job_agent_lost_retries=0,
    )
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    # Killed only once it holds the job: a kill mid-sending would just have the job sent again.
    await wait_until(lambda: fake_agent.holds(job.job_id), what="the agent to hold the job")
    # A restart wipes this agent's memory of its jobs.
    fake_agent.kill()
    await fake_agent.start_and_wait()
    failed = await wait_for_status(storage, job.job_id, FAILED, timeout=60)
    assert "agent lost the job" in failed.status.message


async def test_job_past_its_deadline_is_stopped_and_ends_timeout(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage, timeout_seconds=1)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    ended = await wait_for_status(storage, job.job_id, JobStatusEnum.TIMEOUT)
    assert "deadline of 1 s" in ended.status.message
    assert await sets_holding(storage, ended) == ["failed"]
    cancels = [e for e in await fake_agent.log() if e["call"] == "cancel"]
    assert [c["job_id"] for c in cancels] == [job.job_id]


async def test_an_agent_that_stops_answering_fails_the_job_naming_the_call(
    storage: StorageBackend,
    fake_agent: FakeAgent,
    settings: JobManagerSettings,
    manager_with: ManagerWith,
) -> None:
    # Tries that together outlast one try's deadline (call timeout + 5 s), as with a frozen
    # agent; each try times out after the worker's agent call timeout.
    assert settings.agent_call_timeout * 5 > settings.agent_call_timeout + 5
    job_manager = manager_with(agent_retry_maximum_attempts=5)
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, job.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    await fake_agent.control(job_status_mode="hang")
    failed = await wait_for_status(storage, job.job_id, FAILED, timeout=60)
    assert failed.status.message.startswith("get_job_status failed: timed out calling")
