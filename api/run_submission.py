"""Starting and cancelling runs: which agents a run goes to, and its RunWorkflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.job_manager import TemporalUnavailableError
from api.placement import fit_reason, needs_of
from common.models import (
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    RegisteredAgentInfo,
    utcnow,
)
from common.runs import LabelSelector, RunInfo, RunRecord
from common.settings import JobManagerSettings
from common.storage import ConflictError, StorageBackend
from common.temporal import EXPERIMENT_ID_KEY, RUN_ID_KEY
from workflows.run import WAITING_MESSAGE, RunAgent, RunInput, RunWorkflow


class NoFittingAgentError(Exception):
    """No agent can take the run (HTTP 422); `reasons` says why not, agent by agent."""

    def __init__(self, message: str, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class RunAlreadyEndedError(ConflictError):
    """The run has ended; it cannot be cancelled."""


def choose_agents(
    spec: ExperimentSpec,
    candidates: Sequence[RegisteredAgentInfo],
    selector: LabelSelector | None,
    *,
    all_named: bool,
) -> list[RegisteredAgentInfo]:
    """The candidates that fit: all of them when they were named, else at least one.

    Raises NoFittingAgentError giving each unfit agent's reason.
    """
    needs = needs_of(spec)
    reasons = {a.agent_id: fit_reason(a, needs, selector) for a in candidates}
    unfit = {agent_id: why for agent_id, why in reasons.items() if why is not None}
    fitting = [a for a in candidates if reasons[a.agent_id] is None]
    if (all_named and unfit) or not fitting:
        raise NoFittingAgentError(
            f"no run started: no agent can run experiment {spec.id}"
            + ("" if candidates else ": no agent is registered"),
            unfit,
        )
    return fitting


async def start_run(
    client: Client,
    settings: JobManagerSettings,
    spec: ExperimentSpec,
    agents: Sequence[RegisteredAgentInfo],
    run_id: str,
    repeats: int,
    selector: LabelSelector | None,
    *,
    join_existing: bool = False,
) -> RunRecord:
    """Start the run's workflow and answer once every job of it has started."""
    run = RunRecord(
        run_id=run_id,
        experiment_id=spec.id,
        agents=[a.agent_id for a in agents],
        repeats=repeats,
        selector=selector,
        created_time=utcnow(),
    )
    inp = RunInput(
        run=run,
        spec=spec,
        agents=[
            RunAgent(
                agent_id=a.agent_id,
                agent_url=a.agent_url,
                status=a.status,
                notifies=a.notifies,
                keeps_logs=a.keeps_logs,
            )
            for a in agents
        ],
        policy=settings.policy,
    )
    start = WithStartWorkflowOperation(
        RunWorkflow.run,
        inp,
        id=run_id,
        task_queue=settings.task_queue,
        # A keyed retry joins the run its first try started.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        if join_existing
        else WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(RUN_ID_KEY, run_id),
                SearchAttributePair(EXPERIMENT_ID_KEY, spec.id),
            ]
        ),
        static_summary=f"run of {spec.name} ({spec.id}) on {len(agents)} agent(s), "
        f"{repeats} time(s) each",
    )
    try:
        return await client.execute_update_with_start_workflow(
            RunWorkflow.started,
            start_workflow_operation=start,
            rpc_timeout=timedelta(seconds=settings.submission_timeout),
        )
    except RPCError as err:
        raise TemporalUnavailableError(f"Temporal is unavailable: {err}") from err


async def cancel_run(client: Client, storage: StorageBackend, run_id: str) -> None:
    """Ask the run's workflow to cancel: its unfinished jobs are cancelled, then it ends."""
    run = await storage.get_run(run_id)
    if run.status.ended:
        raise RunAlreadyEndedError(f"run {run_id} already ended ({run.status.value})")
    try:
        await client.get_workflow_handle(run_id).cancel()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RunAlreadyEndedError(f"run {run_id} already ended") from err
        raise TemporalUnavailableError(f"Temporal is unavailable: {err}") from err


async def run_info(storage: StorageBackend, run: RunRecord) -> RunInfo:
    """The run with its jobs' current records, in agent then repeat order.

    A job that has started but not yet recorded itself shows as its run planned it: queued.
    """
    stored = {job.job_id: job for job in await storage.get_run_jobs(run.run_id)}
    jobs = [
        stored.get(job_id) or _planned(run, index, job_id)
        for index, job_id in enumerate(run.job_ids)
    ]
    return RunInfo.of(run, jobs)


def _planned(run: RunRecord, index: int, job_id: str) -> JobInfo:
    return JobInfo(
        job_id=job_id,
        experiment_id=run.experiment_id,
        agent_id=run.agents[min(index // run.repeats, len(run.agents) - 1)],
        created_time=run.created_time,
        status=JobStatus(
            status=JobStatusEnum.QUEUED, message=WAITING_MESSAGE, timestamp=run.created_time
        ),
    )
