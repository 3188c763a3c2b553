"""Upgrading the workers never breaks a job or a queue already running, and the workflows stay
deterministic under Temporal's sandbox although workers run them outside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from api.job_manager import JobManager
from common.models import JobStatusEnum
from common.storage import StorageBackend
from common.temporal import data_converter
from tests.orchestration.conftest import new_experiment, wait_for_status
from tests.support.stack import FakeAgent
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobWorkflow
from workflows.types import queue_workflow_id

# job_completed and agent_queue: recorded from revision 1, before jobs and queues signalled each
# other by local activity; job_completed_rev2: a job of revision 2, dispatched in three steps.
RECORDED = Path(__file__).parent / "histories"
SIGNAL_EXTERNAL = EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED


def local_activities(history: WorkflowHistory) -> list[str]:
    """The local activities a history records, in order."""
    names = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = event.marker_recorded_event_attributes.details["data"].payloads[0].data
            names.append(json.loads(data)["activity_type"])
    return names


def sandboxed_replayer() -> Replayer:
    # The default runner is the sandboxed one: it refuses nondeterministic calls.
    return Replayer(workflows=[JobWorkflow, AgentQueueWorkflow], data_converter=data_converter())


@pytest.mark.parametrize("name", ["job_completed", "job_completed_rev2", "agent_queue"])
async def test_histories_recorded_before_the_upgrade_replay_on_the_new_code(name: str) -> None:
    text = (RECORDED / f"{name}.json").read_text()
    history = WorkflowHistory.from_json(name, text)
    await sandboxed_replayer().replay_workflow(history)


async def test_a_job_and_its_queue_replay_in_the_sandbox(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    await fake_agent.control(job_duration=0.05)
    exp = await new_experiment(storage)
    jobs = [await job_manager.create_job(exp.id, fake_agent.agent_id) for _ in range(2)]
    for job in jobs:
        await wait_for_status(job_manager, job.job_id, JobStatusEnum.COMPLETED)

    histories = [await client.get_workflow_handle(j.job_id).fetch_history() for j in jobs]
    queue = client.get_workflow_handle(queue_workflow_id(fake_agent.agent_id))
    histories.append(await queue.fetch_history())
    for history in histories:
        await sandboxed_replayer().replay_workflow(history)
        # Grants and releases go by local activity: no task spent learning a signal arrived.
        assert not [e for e in history.events if e.event_type == SIGNAL_EXTERNAL]
    # Revision 3: the agent's status, the job and its ASSIGNED record are one step.
    for history in histories[:2]:
        assert local_activities(history)[:2] == ["join_agent_queue", "dispatch"]
        assert local_activities(history)[-1] == "end_job"


@pytest.mark.parametrize("revision", [1, 2])
async def test_jobs_started_by_an_older_server_still_run_and_free_the_agent(
    job_manager: JobManager,
    storage: StorageBackend,
    fake_agent: FakeAgent,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    revision: int,
) -> None:
    monkeypatch.setattr("api.job_manager.JOB_REVISION", revision)
    await fake_agent.control(job_duration=0.05)
    exp = await new_experiment(storage)
    jobs = [await job_manager.create_job(exp.id, fake_agent.agent_id) for _ in range(2)]
    for job in jobs:
        await wait_for_status(job_manager, job.job_id, JobStatusEnum.COMPLETED)
    first = await client.get_workflow_handle(jobs[0].job_id).fetch_history()
    # Each ran the steps of its own revision, and the next job ran after it.
    steps = ["get_agent_status", "execute_experiment", "record_job_status"]
    assert local_activities(first)[1:4] == steps
    # Revision 1 releases the agent with the workflow's own signal.
    signalled = [e for e in first.events if e.event_type == SIGNAL_EXTERNAL]
    assert bool(signalled) is (revision == 1)
