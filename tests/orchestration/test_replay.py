"""The workflows stay deterministic under Temporal's sandbox although workers run them outside
it: histories of every way a job ends, and of a queue that continued as new, replay."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.worker import Replayer

from activities.agent_queue import queue_workflow_id
from api.job_manager import JobManager
from common.models import JobStatusEnum
from common.storage import StorageBackend
from common.temporal import data_converter
from tests.orchestration.conftest import ManagerWith, new_experiment, wait_for_status
from tests.support.stack import FakeAgent, wait_until
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobWorkflow

SIGNAL_EXTERNAL = EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED


def local_activities(history: WorkflowHistory) -> list[str]:
    """The local activities a history records, in order."""
    names = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = event.marker_recorded_event_attributes.details["data"].payloads[0].data
            names.append(json.loads(data)["activity_type"])
    return names


async def replay(history: WorkflowHistory) -> None:
    # The default runner is the sandboxed one: it refuses nondeterministic calls.
    replayer = Replayer(
        workflows=[JobWorkflow, AgentQueueWorkflow], data_converter=data_converter()
    )
    await replayer.replay_workflow(history)


async def test_every_way_a_job_ends_replays_in_the_sandbox(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    quick = await new_experiment(storage)
    short = await new_experiment(storage, timeout_seconds=1)

    await fake_agent.control(job_duration=0.05, final_status="completed")
    completed = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, completed.job_id, JobStatusEnum.COMPLETED)
    await fake_agent.control(final_status="failed")
    failed = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, failed.job_id, JobStatusEnum.FAILED)

    await fake_agent.control(job_duration=None)
    cancelled = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, cancelled.job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    await job_manager.cancel_job(cancelled.job_id)
    await wait_for_status(storage, cancelled.job_id, JobStatusEnum.CANCELLED)
    timed_out = await job_manager.create_job(short.id, fake_agent.agent_id)
    await wait_for_status(storage, timed_out.job_id, JobStatusEnum.TIMEOUT)

    for job in (completed, failed, cancelled, timed_out):
        handle = client.get_workflow_handle(job.job_id)
        await wait_until(
            lambda h=handle: _closed(h), 30, what=f"the workflow of {job.job_id} to close"
        )
        history = await handle.fetch_history()
        await replay(history)
        steps = local_activities(history)
        # A job's story in three steps: join its agent's queue, dispatch, end.
        assert steps[:2] == ["join_agent_queue", "dispatch"]
        assert steps[-1] == "end_job"
        # Grants and releases go by local activity: no task spent learning a signal arrived.
        assert not [e for e in history.events if e.event_type == SIGNAL_EXTERNAL]


async def test_a_queue_that_continued_as_new_replays_in_the_sandbox(
    manager_with: ManagerWith, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    manager = manager_with(queue_continue_as_new_events=10)
    await fake_agent.control(job_duration=0.0)
    exp = await new_experiment(storage)
    jobs = [await manager.create_job(exp.id, fake_agent.agent_id) for _ in range(4)]
    for job in jobs:
        await wait_for_status(storage, job.job_id, JobStatusEnum.COMPLETED)

    queue = queue_workflow_id(fake_agent.agent_id)
    runs = [w async for w in client.list_workflows(f'WorkflowId="{queue}"')]
    continued = [r for r in runs if r.status is WorkflowExecutionStatus.CONTINUED_AS_NEW]
    assert continued, "the queue should have continued as new after 10 events"
    for run in runs:
        history = await client.get_workflow_handle(queue, run_id=run.run_id).fetch_history()
        await replay(history)


async def _closed(handle: object) -> bool:
    described = await handle.describe()  # type: ignore[attr-defined]
    return described.status is not WorkflowExecutionStatus.RUNNING
