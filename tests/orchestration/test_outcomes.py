"""A job's workflow ends as the job did, so Temporal's web UI and CLI tell the truth; a job
shows its stage and progress while it runs, keeps its log, and outlives its agent's restart."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from api.job_manager import JobManager
from common.models import JobStatus, JobStatusEnum
from common.storage import NotFoundError, StorageBackend
from ruckus.temporal_server import find_temporal_binary
from tests.orchestration.conftest import (
    ManagerWith,
    new_experiment,
    register,
    wait_for_status,
)
from tests.support.stack import FakeAgent, TemporalDevServer, wait_until

S = JobStatusEnum
RUNNING = (S.ASSIGNED, S.RUNNING)


async def closed(client: Client, job_id: str) -> WorkflowExecutionStatus:
    handle = client.get_workflow_handle(job_id)

    async def ended() -> WorkflowExecutionStatus | None:
        status = (await handle.describe()).status
        return None if status is WorkflowExecutionStatus.RUNNING else status

    result: WorkflowExecutionStatus = await wait_until(ended, 30, what=f"{job_id} to close")
    return result


async def failure_type(client: Client, job_id: str) -> str | None:
    with pytest.raises(WorkflowFailureError) as failed:
        await client.get_workflow_handle(job_id).result()
    cause = failed.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_each_outcome_is_the_workflows_own_status(
    job_manager: JobManager,
    storage: StorageBackend,
    fake_agent: FakeAgent,
    client: Client,
    temporal_server: TemporalDevServer,
) -> None:
    quick, short = await new_experiment(storage), await new_experiment(storage, timeout_seconds=1)
    await fake_agent.control(job_duration=0.05)
    completed = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, completed.job_id, S.COMPLETED)
    await fake_agent.control(final_status="failed")
    failed = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, failed.job_id, S.FAILED)
    await fake_agent.control(job_duration=None)
    timed_out = await job_manager.create_job(short.id, fake_agent.agent_id)
    await wait_for_status(storage, timed_out.job_id, S.TIMEOUT)
    cancelled = await job_manager.create_job(quick.id, fake_agent.agent_id)
    await wait_for_status(storage, cancelled.job_id, *RUNNING)
    await job_manager.cancel_job(cancelled.job_id)
    await wait_for_status(storage, cancelled.job_id, S.CANCELLED)

    assert await closed(client, completed.job_id) is WorkflowExecutionStatus.COMPLETED
    assert await closed(client, failed.job_id) is WorkflowExecutionStatus.FAILED
    assert await closed(client, timed_out.job_id) is WorkflowExecutionStatus.FAILED
    assert await closed(client, cancelled.job_id) is WorkflowExecutionStatus.CANCELED
    assert await failure_type(client, failed.job_id) == "JobFailed"
    assert await failure_type(client, timed_out.job_id) == "JobTimedOut"
    result = await client.get_workflow_handle(completed.job_id).result()
    assert JobStatus.model_validate(result).status is S.COMPLETED

    # What an operator's query with the temporal CLI finds: exactly the failed jobs.
    query = f'ExecutionStatus="Failed" AND RuckusAgentId="{fake_agent.agent_id}"'
    listed = await asyncio.to_thread(
        subprocess.run,
        [
            str(find_temporal_binary(None)),
            "workflow",
            "list",
            "--address",
            temporal_server.address,
            "--query",
            query,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {w["execution"]["workflowId"] for w in json.loads(listed.stdout)}
    assert found == {failed.job_id, timed_out.job_id}


async def test_stage_progress_and_log_of_a_running_job_are_kept(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, client: Client
) -> None:
    await fake_agent.control(job_duration=None, stage="matmul 512 fp32, run 2 of 5", progress=0.4)
    job = await job_manager.create_job((await new_experiment(storage)).id, fake_agent.agent_id)

    async def staged() -> bool:
        status = (await storage.get_job(job.job_id)).status
        return status.stage == "matmul 512 fp32, run 2 of 5" and status.progress == 0.4

    await wait_until(staged, 30, what="the job's stage and progress to be recorded")
    # The web UI shows the workflow's current details: the stage and progress.
    metadata = await client.get_workflow_handle(job.job_id).query("__temporal_workflow_metadata")
    assert metadata.current_details == "matmul 512 fp32, run 2 of 5 (40%)"

    await fake_agent.log_line(job.job_id, "run 2 of 5: 41.7 GFLOP/s")
    await fake_agent.finish(job.job_id)
    await wait_for_status(storage, job.job_id, S.COMPLETED)
    fake_agent.stop()  # the log outlives its agent
    saved = await storage.get_job_log(job.job_id)
    assert saved == f"starting {job.job_id}\nrun 2 of 5: 41.7 GFLOP/s\n"


async def test_an_agent_that_keeps_no_logs_is_not_asked_for_one(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    # As an existing agent: it declares no `job_logs` capability.
    await register(storage, "no-logs", fake_agent.url)
    job = await job_manager.create_job((await new_experiment(storage)).id, "no-logs")
    await wait_for_status(storage, job.job_id, S.COMPLETED)
    assert (await storage.get_job_results(job.job_id))["job_id"] == job.job_id
    calls = [e["call"] for e in await fake_agent.log() if e.get("job_id") == job.job_id]
    assert "results" in calls and "logs" not in calls
    with pytest.raises(NotFoundError):
        await storage.get_job_log(job.job_id)


@pytest.mark.parametrize("forget", [False, True], ids=["marked-lost", "forgotten"])
async def test_a_job_its_agent_lost_is_sent_again_before_any_other(
    job_manager: JobManager, storage: StorageBackend, fake_agent: FakeAgent, forget: bool
) -> None:
    exp = await new_experiment(storage)
    await fake_agent.control(job_duration=None)
    job = await job_manager.create_job(exp.id, fake_agent.agent_id)
    behind = await job_manager.create_job(exp.id, fake_agent.agent_id)
    await wait_until(fake_agent.executed, 30, what="the job to reach the agent")
    await fake_agent.restart(forget=forget)

    async def sent_again() -> bool:
        return await fake_agent.executed() == [job.job_id, job.job_id]

    await wait_until(sent_again, 30, what="the lost job to be sent again")
    again = await wait_for_status(storage, job.job_id, *RUNNING)
    assert again.status.attempt == 2
    await fake_agent.control(job_duration=0.0)
    await fake_agent.finish(job.job_id)
    await wait_for_status(storage, behind.job_id, S.COMPLETED)
    done = await storage.get_job(job.job_id)
    assert done.status.status is S.COMPLETED and done.status.attempt == 2
    assert (await storage.get_job_results(job.job_id))["attempt"] == 2
    # Nobody overtook it, and the agent never ran two at once.
    log = [e for e in await fake_agent.log() if e["call"] == "execute"]
    assert [e["job_id"] for e in log] == [job.job_id, job.job_id, behind.job_id]
    assert all(e["concurrent"] == [] for e in log)


async def test_with_no_retries_a_lost_job_fails_as_before(
    manager_with: ManagerWith, storage: StorageBackend, fake_agent: FakeAgent
) -> None:
    manager = manager_with(job_agent_lost_retries=0)
    await fake_agent.control(job_duration=None)
    job = await manager.create_job((await new_experiment(storage)).id, fake_agent.agent_id)
    await wait_until(fake_agent.executed, 30, what="the job to reach the agent")
    await fake_agent.restart()
    failed = await wait_for_status(storage, job.job_id, S.FAILED)
    assert failed.status.message == "the agent shut down while the job ran"
    assert failed.status.error_type == "AgentRestarted"
    assert await fake_agent.executed() == [job.job_id]
