"""What operators see and what bounds a job: search attributes, history, ids, continue-as-new."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from activities.agent_queue import QueueState, queue_workflow_id
from api.job_manager import JobManager
from common.job_ids import JobUtility
from common.models import JobInfo, JobStatus, JobStatusEnum, utcnow
from common.settings import JobManagerSettings
from common.storage import NotFoundError, StorageBackend
from tests.orchestration.conftest import (
    ManagerWith,
    new_experiment,
    sets_holding,
    wait_for_status,
)
from tests.support.stack import FakeAgent, wait_until
from workflows.agent_queue import AgentQueueWorkflow

DONE = JobStatusEnum.COMPLETED


async def _runs(client: Client, workflow_id: str) -> int:
    return len([w async for w in client.list_workflows(f'WorkflowId="{workflow_id}"')])


async def test_operators_find_jobs_by_agent_experiment_and_status(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, job.job_id, DONE)
    query = (
        f'RuckusAgentId="{fake_agent.agent_id}" and RuckusExperimentId="{exp.id}" '
        'and RuckusJobStatus="completed" and WorkflowType="JobWorkflow"'
    )

    async def found() -> list[str]:
        return [w.id async for w in client.list_workflows(query)]

    assert await wait_until(found, what="the job in visibility") == [job.job_id]
    described = await client.get_workflow_handle(job.job_id).describe()
    summary = await described.static_summary()
    assert summary is not None
    assert exp.id in summary and fake_agent.agent_id in summary


async def test_a_quick_job_costs_well_under_100_history_events(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, job.job_id, DONE)
    handle = client.get_workflow_handle(job.job_id)
    await handle.result()
    events = [e async for e in handle.fetch_history_events()]
    print(f"history events of a quick job: {len(events)}")
    assert len(events) < 60


async def test_a_taken_job_id_is_drawn_again_and_nothing_is_overwritten(
    job_manager: JobManager,
    storage: StorageBackend,
    fake_agent: FakeAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exp = await new_experiment(storage)
    first = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_for_status(storage, first.job_id, DONE)
    draws = iter([first.job_id, first.job_id, "job_99999999"])
    monkeypatch.setattr(JobUtility, "generate_job_id", staticmethod(lambda: next(draws)))
    second = await job_manager.create_job(exp.id, fake_agent.agent_id)
    assert second.job_id == "job_99999999"
    await wait_for_status(storage, second.job_id, DONE)
    kept = await storage.get_job(first.job_id)
    assert kept.created_time == first.created_time and kept.status.status is DONE
    assert await fake_agent.executed() == [first.job_id, second.job_id]


async def test_an_id_only_storage_holds_is_drawn_again_and_its_job_kept(
    job_manager: JobManager,
    storage: StorageBackend,
    fake_agent: FakeAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Temporal forgot the job (its history's retention passed) but storage keeps its record.
    exp = await new_experiment(storage)
    old = JobInfo(
        job_id="job_55555555",
        experiment_id="an-old-experiment",
        agent_id=fake_agent.agent_id,
        created_time=utcnow(),
        status=JobStatus(status=DONE, message="long ago"),
    )
    await storage.create_job(old)
    draws = iter([old.job_id, "job_44444444"])
    monkeypatch.setattr(JobUtility, "generate_job_id", staticmethod(lambda: next(draws)))
    new = await job_manager.create_job(exp.id, fake_agent.agent_id)
    assert new.job_id == "job_44444444"
    await wait_for_status(storage, new.job_id, DONE)
    assert await storage.get_job(old.job_id) == old
    assert await fake_agent.executed() == [new.job_id]


async def test_long_job_continues_as_new_and_finishes_once(
    storage: StorageBackend, fake_agent: FakeAgent, client: Client, manager_with: ManagerWith
) -> None:
    manager = manager_with(job_continue_as_new_polls=3)
    await fake_agent.control(job_duration=None)
    exp = await new_experiment(storage)
    job = await manager.create_job(exp.id, fake_agent.agent_id)

    async def continued_twice() -> bool:
        return await _runs(client, job.job_id) >= 3

    await wait_until(continued_twice, what="two continue-as-new of the job")
    await fake_agent.finish(job.job_id)
    done = await wait_for_status(storage, job.job_id, DONE)
    assert await sets_holding(storage, done) == ["completed"]
    assert (await storage.get_job_results(job.job_id))["status"] == "completed"
    assert await fake_agent.executed() == [job.job_id]


async def test_long_queue_continues_as_new_without_losing_or_repeating_a_job(
    storage: StorageBackend, fake_agent: FakeAgent, client: Client, manager_with: ManagerWith
) -> None:
    manager = manager_with(queue_continue_as_new_events=30)
    await fake_agent.control(job_duration=0.02)
    exp = await new_experiment(storage)
    jobs = [await manager.create_job(exp.id, fake_agent.agent_id) for _ in range(12)]
    for job in jobs:
        await wait_for_status(storage, job.job_id, DONE, timeout=60)
    queue_id = queue_workflow_id(fake_agent.agent_id)
    assert await _runs(client, queue_id) >= 2
    assert await fake_agent.executed() == [j.job_id for j in jobs]

    # A repeated enqueue of a finished job (a second delivery) is ignored by the new run.
    handle = client.get_workflow_handle_for(AgentQueueWorkflow.run, queue_id)
    await handle.signal(AgentQueueWorkflow.enqueue, jobs[0].job_id)
    snapshot = await handle.query(AgentQueueWorkflow.snapshot)
    assert snapshot.running is None and snapshot.queued == []


async def test_an_id_temporal_remembers_is_never_reused(
    job_manager: JobManager,
    storage: StorageBackend,
    fake_agent: FakeAgent,
    client: Client,
    settings: JobManagerSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A workflow with this id exists in Temporal, though storage has no such job.
    await client.start_workflow(
        AgentQueueWorkflow.run,
        QueueState(agent_id="nobody"),
        id="job_88888888",
        task_queue=settings.task_queue,
    )
    draws = iter(["job_88888888", "job_77777777"])
    monkeypatch.setattr(JobUtility, "generate_job_id", staticmethod(lambda: next(draws)))
    exp = await new_experiment(storage)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    assert job.job_id == "job_77777777"
    await wait_for_status(storage, job.job_id, DONE)
    with pytest.raises(NotFoundError):
        await storage.get_job("job_88888888")
