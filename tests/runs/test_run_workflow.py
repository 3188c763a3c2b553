"""RunWorkflow's own logic, with a stand-in for JobWorkflow registered under its name.

The real jobs run in tests/api/test_runs.py; here the children do what each test needs: end at
once, fail as if storage held their id, or wait until cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from activities.errors import JOB_ID_TAKEN
from activities.run import RunActivities
from common.models import AgentStatusEnum, ExperimentSpec, JobStatus, JobStatusEnum, TaskSpec
from common.runs import RunRecord, RunStatus, new_run_id
from common.settings import JobPolicy, StorageSettings
from common.storage import StorageBackend, create_storage
from common.temporal import data_converter
from tests.support.stack import TemporalDevServer, wait_until
from workflows.job_types import JobInput
from workflows.run import RunAgent, RunInput, RunWorkflow
from workflows.worker import workflow_runner

# Agents whose first job fails because "storage holds its id"; each fails once.
TAKEN_ONCE: set[str] = set()


@workflow.defn(name="JobWorkflow")
class StandInJob:
    """Ends at once; on agent `hangs` waits until cancelled; on `taken` fails once as taken."""

    @workflow.run
    async def run(self, inp: JobInput) -> JobStatus:
        agent = inp.job.agent_id
        if agent.startswith("taken") and agent not in TAKEN_ONCE:
            TAKEN_ONCE.add(agent)
            raise ApplicationError("the job id holds another job", type=JOB_ID_TAKEN)
        if agent.startswith("hangs"):
            await workflow.wait_condition(lambda: False)
        return JobStatus(status=JobStatusEnum.COMPLETED, timestamp=workflow.now())


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemporalDevServer]:
    s = TemporalDevServer(tmp_path_factory.mktemp("runs"))
    await s.start_and_wait()
    yield s
    s.stop()


@pytest.fixture(scope="module")
async def storage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StorageBackend]:
    backend = create_storage(StorageSettings(data_dir=tmp_path_factory.mktemp("runs-storage")))
    await backend.initialize()
    yield backend
    await backend.close()


@pytest.fixture(scope="module")
async def client(server: TemporalDevServer, storage: StorageBackend) -> AsyncIterator[Client]:
    client = await server.client()
    activities = RunActivities(storage)
    async with Worker(
        client,
        task_queue="runs",
        workflows=[RunWorkflow, StandInJob],
        activities=[activities.create_run, activities.record_run_jobs, activities.end_run],
        workflow_runner=workflow_runner(),
    ):
        yield client


def run_input(agents: list[str], repeats: int) -> RunInput:
    spec = ExperimentSpec(
        id="exp", name="exp", model="none", task=TaskSpec(name="t", type="compute_benchmark")
    )
    run = RunRecord(
        run_id=new_run_id(),
        experiment_id=spec.id,
        agents=agents,
        repeats=repeats,
        created_time=datetime.now(UTC),
    )
    return RunInput(
        run=run,
        spec=spec,
        agents=[
            RunAgent(agent_id=a, agent_url=f"http://{a}", status=AgentStatusEnum.IDLE)
            for a in agents
        ],
        policy=JobPolicy(),
    )


async def start(client: Client, inp: RunInput) -> RunRecord:
    handle = await client.start_workflow(RunWorkflow.run, inp, id=inp.run.run_id, task_queue="runs")
    return await handle.execute_update(RunWorkflow.started)


async def test_one_child_job_per_agent_and_repeat_in_run_order(
    client: Client, storage: StorageBackend
) -> None:
    inp = run_input(["a", "b"], repeats=3)
    started = await start(client, inp)
    assert len(started.job_ids) == 6 == len(set(started.job_ids))
    ended = await client.get_workflow_handle_for(RunWorkflow.run, inp.run.run_id).result()
    assert ended.status is RunStatus.COMPLETED and ended.job_ids == started.job_ids
    for index, job_id in enumerate(started.job_ids):
        described = await client.get_workflow_handle(job_id).describe()
        assert described.parent_id == inp.run.run_id
        job_input = await _input_of(client, job_id)
        assert job_input.job.agent_id == ["a", "b"][index // 3]
    stored = await storage.get_run(inp.run.run_id)
    assert stored.status is RunStatus.COMPLETED and stored.job_ids == started.job_ids
    assert await storage.get_run_comparison(inp.run.run_id) is not None


async def test_a_job_whose_id_storage_holds_runs_again_under_a_new_id(
    client: Client, storage: StorageBackend
) -> None:
    agent = f"taken-{uuid.uuid4().hex[:6]}"
    inp = run_input([agent], repeats=1)
    first = (await start(client, inp)).job_ids
    ended = await client.get_workflow_handle_for(RunWorkflow.run, inp.run.run_id).result()
    assert ended.status is RunStatus.COMPLETED
    assert len(ended.job_ids) == 1 and ended.job_ids != first
    assert (await storage.get_run(inp.run.run_id)).job_ids == ended.job_ids
    failed = await client.get_workflow_handle(first[0]).describe()
    assert failed.status is WorkflowExecutionStatus.FAILED


async def test_a_cancelled_run_cancels_its_jobs_and_waits_for_them(
    client: Client, storage: StorageBackend
) -> None:
    inp = run_input(["quick", f"hangs-{uuid.uuid4().hex[:6]}"], repeats=2)
    started = await start(client, inp)
    handle = client.get_workflow_handle_for(RunWorkflow.run, inp.run.run_id)
    quick = started.job_ids[:2]

    async def quick_done() -> bool:
        statuses = [(await client.get_workflow_handle(j).describe()).status for j in quick]
        return statuses == [WorkflowExecutionStatus.COMPLETED] * 2

    await wait_until(quick_done, 30, what="the quick jobs to end")
    await handle.cancel()
    ended = await handle.result()
    assert ended.status is RunStatus.CANCELLED and ended.ended_time is not None
    for job_id in started.job_ids[2:]:
        described = await client.get_workflow_handle(job_id).describe()
        assert described.status is WorkflowExecutionStatus.CANCELED
    assert (await storage.get_run(inp.run.run_id)).status is RunStatus.CANCELLED


async def _input_of(client: Client, workflow_id: str) -> JobInput:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (payload,) = started.input.payloads
    (value,) = await client.data_converter.decode([payload], [JobInput])
    return value


async def test_a_runs_history_replays_in_the_sandbox(client: Client) -> None:
    """Workers run workflows unsandboxed; the sandbox here keeps RunWorkflow deterministic."""
    taken = f"taken-{uuid.uuid4().hex[:6]}"
    inp = run_input(["a", taken], repeats=2)
    await start(client, inp)
    handle = client.get_workflow_handle_for(RunWorkflow.run, inp.run.run_id)
    await handle.result()
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[RunWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(history)
