"""RunWorkflow: one experiment on several agents, each job a child JobWorkflow.

A run records itself, starts one job per agent and repeat (agent then repeat order) as its
children, waits for every one of them whatever its outcome, and stores the comparison of their
results. Cancelled, it cancels the jobs that have not ended, waits for them, and ends cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.errors import JOB_ID_TAKEN
    from activities.run import RunActivities, RunEnd, RunJobs
    from common.job_ids import JOB_ID_DIGITS, JOB_ID_PREFIX
    from common.models import (
        AgentStatusEnum,
        ExperimentSpec,
        JobInfo,
        JobStatus,
        JobStatusEnum,
    )
    from common.runs import RunRecord, RunStatus
    from common.settings import JobPolicy
    from common.temporal import AGENT_ID_KEY, EXPERIMENT_ID_KEY, JOB_STATUS_KEY, RUN_ID_KEY
    from workflows.job import JobWorkflow
    from workflows.job_types import JobInput
    from workflows.steps import application_failure

MAX_ID_DRAWS = 20
WAITING_MESSAGE = "waiting for the agent"
# Storage steps: retried until storage takes them (the run must not be lost).
STORAGE_STEP = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10)),
}


class RunAgent(BaseModel):
    """An agent of the run as the server read it when the run was submitted."""

    agent_id: str
    agent_url: str
    status: AgentStatusEnum
    notifies: bool = False
    keeps_logs: bool = False


class RunInput(BaseModel):
    run: RunRecord
    spec: ExperimentSpec
    agents: list[RunAgent]
    policy: JobPolicy


JobHandle = ChildWorkflowHandle[JobWorkflow, JobStatus]


@workflow.defn
class RunWorkflow:
    @workflow.init
    def __init__(self, inp: RunInput) -> None:
        self._inp = inp
        self._run = inp.run
        self._recorded = False
        self._cancelled = False

    @workflow.run
    async def run(self, inp: RunInput) -> RunRecord:
        self._run = await workflow.execute_activity_method(
            RunActivities.create_run, inp.run, **STORAGE_STEP
        )
        slots = [agent for agent in inp.agents for _ in range(inp.run.repeats)]
        handles: list[JobHandle | None] = [None] * len(slots)

        async def start(index: int) -> None:
            handles[index] = await self._start_job(slots[index])

        try:
            # All at once: their starts share the workflow's tasks instead of one each.
            await asyncio.gather(*(start(index) for index in range(len(slots))))
            await self._record_jobs(handles)
            # A job whose id storage already held never ran: it goes again under a new id.
            while retry := [i for i, h in enumerate(await self._ended(handles)) if _id_taken(h)]:
                for index in retry:
                    handles[index] = await self._start_job(slots[index])
                await self._record_jobs(handles)
        except asyncio.CancelledError:
            self._cancelled = True
            await self._cancel_jobs(handles)
            if not self._recorded:
                await self._record_jobs(handles)
        status = RunStatus.CANCELLED if self._cancelled else RunStatus.COMPLETED
        self._run = await workflow.execute_activity_method(
            RunActivities.end_run, RunEnd(run_id=self._run.run_id, status=status), **STORAGE_STEP
        )
        return self._run

    @workflow.update
    async def started(self) -> RunRecord:
        """Answers once every job of the run has started and the run lists them."""
        await workflow.wait_condition(lambda: self._recorded)
        return self._run

    @workflow.query
    def record(self) -> RunRecord:
        return self._run

    async def _start_job(self, agent: RunAgent) -> JobHandle:
        """Start one job as a child; an id Temporal already knows is drawn again."""
        for _ in range(MAX_ID_DRAWS):
            job = JobInfo(
                job_id=self._draw_job_id(),
                experiment_id=self._run.experiment_id,
                agent_id=agent.agent_id,
                created_time=workflow.now(),
                status=JobStatus(
                    status=JobStatusEnum.QUEUED, message=WAITING_MESSAGE, timestamp=workflow.now()
                ),
            )
            inp = JobInput(
                job=job,
                spec=self._inp.spec,
                agent_url=agent.agent_url,
                agent_status=agent.status,
                policy=self._inp.policy,
                agent_notifies=agent.notifies,
                agent_keeps_logs=agent.keeps_logs,
            )
            try:
                return await workflow.start_child_workflow(
                    JobWorkflow.run,
                    inp,
                    id=job.job_id,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    # The run's end (cancelled, terminated) reaches its jobs.
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(AGENT_ID_KEY, job.agent_id),
                            SearchAttributePair(EXPERIMENT_ID_KEY, job.experiment_id),
                            SearchAttributePair(JOB_STATUS_KEY, job.status.status.value),
                            SearchAttributePair(RUN_ID_KEY, self._run.run_id),
                        ]
                    ),
                    static_summary=f"{self._inp.spec.name} ({job.experiment_id}) on agent "
                    f"{job.agent_id}, run {self._run.run_id}",
                )
            except WorkflowAlreadyStartedError:
                continue
        raise RuntimeError(f"no free job id after {MAX_ID_DRAWS} draws")

    async def _record_jobs(self, handles: list[JobHandle | None]) -> None:
        job_ids = [h.id for h in handles if h is not None]
        self._run = await workflow.execute_activity_method(
            RunActivities.record_run_jobs,
            RunJobs(run_id=self._run.run_id, job_ids=job_ids),
            **STORAGE_STEP,
        )
        self._recorded = True

    async def _ended(self, handles: list[JobHandle | None]) -> list[JobHandle | None]:
        """Wait until every job has ended, whatever its outcome.

        A condition, not an await of the jobs: a cancel of the run must reach this workflow,
        not be taken for the cancel of whichever job it was awaiting.
        """
        await workflow.wait_condition(lambda: all(h is None or h.done() for h in handles))
        return handles

    async def _cancel_jobs(self, handles: list[JobHandle | None]) -> None:
        """Cancel the jobs that have not ended and wait until each has."""
        for handle in handles:
            if handle is not None and not handle.done():
                handle.cancel()
        await self._ended(handles)

    def _draw_job_id(self) -> str:
        return f"{JOB_ID_PREFIX}{workflow.random().randrange(10**JOB_ID_DIGITS):0{JOB_ID_DIGITS}d}"


def _id_taken(handle: JobHandle | None) -> bool:
    """Whether the (ended) job failed because storage held its id already."""
    if handle is None or handle.cancelled():
        return False
    err = handle.exception()
    if not isinstance(err, ChildWorkflowError) or err.cause is None:
        return False
    failure = application_failure(err.cause)
    return failure is not None and failure.type == JOB_ID_TAKEN
