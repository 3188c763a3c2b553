"""One job at a time per agent, in submission order, with cancel in every state."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from api.job_manager import JobManager
from common.models import JobStatusEnum
from common.storage import StorageBackend
from tests.orchestration.conftest import (
    ManagerWith,
    new_experiment,
    sets_holding,
    wait_for_status,
)
from tests.support.stack import FakeAgent, wait_until

DONE, CANCELLED = JobStatusEnum.COMPLETED, JobStatusEnum.CANCELLED


async def test_twenty_concurrent_jobs_run_one_at_a_time_in_the_order_storage_reports(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    blocker = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, blocker.job_id, JobStatusEnum.ASSIGNED)
    await wait_until(fake_agent.executed, 30, what="the first job to reach the agent")
    jobs = await asyncio.gather(
        *(job_manager.create_job(exp.id, fake_agent.agent_id) for _ in range(20))
    )
    # Submitted at once, they queue in the order the queue took them, and storage says so.
    stored_order = [j.job_id for j in await storage.get_queued_jobs(fake_agent.agent_id)]
    snapshot = await job_manager.agent_queue(fake_agent.agent_id)
    assert sorted(stored_order) == sorted(j.job_id for j in jobs)
    assert snapshot.queued == stored_order

    await fake_agent.control(job_duration=0.05)
    await fake_agent.finish(blocker.job_id)
    for job in jobs:
        await wait_for_status(storage, job.job_id, DONE, timeout=60)
    log = await fake_agent.log()
    executes = [e for e in log if e["call"] == "execute"]
    assert [e["job_id"] for e in executes] == [blocker.job_id, *stored_order]  # each once
    assert all(e["concurrent"] == [] for e in executes)  # never a second job while one runs
    for job in jobs:
        assert await sets_holding(storage, await storage.get_job(job.job_id)) == ["completed"]


async def test_cancel_a_queued_job_and_a_running_job(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    first = await job_manager.create_job(exp.id, fake_agent.agent_id)
    second = await job_manager.create_job(exp.id, fake_agent.agent_id)
    third = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, first.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)

    snapshot = await job_manager.agent_queue(fake_agent.agent_id)
    assert snapshot.running == first.job_id
    assert snapshot.queued == [second.job_id, third.job_id]

    await job_manager.cancel_job(second.job_id)
    cancelled = await wait_for_status(storage, second.job_id, CANCELLED)
    assert await sets_holding(storage, cancelled) == ["failed"]

    await job_manager.cancel_job(first.job_id)
    stopped = await wait_for_status(storage, first.job_id, CANCELLED)
    assert await sets_holding(storage, stopped) == ["failed"]
    cancels = [e["job_id"] for e in await fake_agent.log() if e["call"] == "cancel"]
    assert cancels == [first.job_id]

    # The agent passes to the next job; the cancelled queued job never reached it.
    await wait_until(lambda: _executed_includes(fake_agent, third.job_id), what="third job")
    assert await fake_agent.executed() == [first.job_id, third.job_id]
    await fake_agent.finish(third.job_id)
    await wait_for_status(storage, third.job_id, DONE)

    async def agent_free() -> bool:
        # The job releases its agent right after recording its end.
        snapshot = await job_manager.agent_queue(fake_agent.agent_id)
        return snapshot.running is None and snapshot.queued == []

    await wait_until(agent_free, what="the agent's queue to be empty")


async def _executed_includes(agent: FakeAgent, job_id: str) -> bool:
    return job_id in await agent.executed()


async def test_a_job_whose_workflow_is_terminated_frees_its_agent_for_the_next(
    storage: StorageBackend, fake_agent: FakeAgent, client: Client, manager_with: ManagerWith
) -> None:
    # An operator ends a running job's workflow with `temporal workflow terminate`.
    manager = manager_with(queue_holder_check_interval=0.5)
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    first = await manager.create_job(exp.id, fake_agent.agent_id)
    second = await manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, first.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    await client.get_workflow_handle(first.job_id).terminate(reason="operator")

    failed = await wait_for_status(storage, first.job_id, JobStatusEnum.FAILED)
    assert "terminated" in failed.status.message
    assert await sets_holding(storage, failed) == ["failed"]
    # The agent still runs the orphaned job; once it is done, the next job gets the agent.
    await fake_agent.control(job_duration=0.05)
    await fake_agent.finish(first.job_id)
    await wait_for_status(storage, second.job_id, DONE)
    snapshot = await manager.agent_queue(fake_agent.agent_id)
    assert (snapshot.running, snapshot.queued) == (None, [])
