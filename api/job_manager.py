"""JobManager: creates jobs as Temporal workflows and answers questions about them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import timedelta

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.agent_queue import QueueSnapshot, queue_workflow_id
from activities.errors import JOB_ID_TAKEN
from common.job_ids import JobUtility
from common.models import (
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    RegisteredAgentInfo,
    utcnow,
)
from common.settings import JobManagerSettings
from common.storage import ConflictError, StorageBackend
from common.temporal import AGENT_ID_KEY, EXPERIMENT_ID_KEY, JOB_STATUS_KEY, connect_temporal
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobInput, JobWorkflow

log = logging.getLogger(__name__)

MAX_ID_DRAWS = 20


class JobAlreadyFinishedError(ConflictError):
    """The job has reached a terminal state; it cannot be cancelled."""


class TemporalUnavailableError(Exception):
    """Temporal did not answer; the job was not created."""


# How a job whose submission was not confirmed is recorded: it never runs.
NOT_STARTED = "not started"


class SubmissionNotStarted(Exception):
    """A job's start could not be confirmed in time; it was recorded FAILED and will not run."""


class JobManager:
    """The facade the API uses for jobs; every job is a JobWorkflow with id = job id."""

    def __init__(
        self,
        storage: StorageBackend,
        client: Client | None = None,
        settings: JobManagerSettings | None = None,
    ) -> None:
        self._storage = storage
        self._client = client
        self._settings = settings or JobManagerSettings()

    async def start(self) -> None:
        if self._client is None:
            self._client = await connect_temporal(
                self._settings.temporal_namespace, self._settings.payload_key
            )

    async def stop(self) -> None:
        """Nothing to close: the client belongs to whoever passed it, or to the process."""

    @property
    def client(self) -> Client:
        if self._client is None:
            raise TemporalUnavailableError("the JobManager is not started")
        return self._client

    async def create_job(
        self,
        experiment_id: str,
        agent_id: str,
        agent: RegisteredAgentInfo | None = None,
        *,
        spec: ExperimentSpec | None = None,
        job_id: str | None = None,
    ) -> JobInfo:
        """Start the job's workflow and answer once it has recorded the job in its agent's queue.

        `agent` and `spec` are their records when the caller has just read them. `job_id` is
        the job an idempotency key claimed: its workflow is joined if it started already, never
        doubled.
        Raises NotFoundError for an unknown experiment or agent before anything starts, and
        SubmissionNotStarted when the start could not be confirmed (the job then never runs).
        """
        if spec is None or spec.id != experiment_id:
            spec = await self._storage.get_experiment(experiment_id)
        if agent is None or agent.agent_id != agent_id:
            agent = await self._storage.get_agent(agent_id)
        # Drawn one at a time: a collision (rare) draws the next.
        ids = [job_id] if job_id else (JobUtility.generate_job_id() for _ in range(MAX_ID_DRAWS))
        for candidate in ids:
            job = JobInfo(
                job_id=candidate,
                experiment_id=experiment_id,
                agent_id=agent_id,
                created_time=utcnow(),
                status=JobStatus(status=JobStatusEnum.QUEUED, message="waiting for the agent"),
            )
            inp = JobInput(
                job=job,
                spec=spec,
                agent_url=agent.agent_url,
                agent_status=agent.status,
                policy=self._settings.policy,
                agent_notifies=agent.notifies,
                agent_keeps_logs=agent.keeps_logs,
            )
            try:
                async with asyncio.timeout(self._settings.submission_timeout):
                    return await self._start(inp, spec.name, join_existing=job_id is not None)
            except WorkflowAlreadyStartedError:
                if job_id is not None:  # the claimed job ran already
                    return await self._storage.get_job(job_id)
                log.info("job id %s is taken in Temporal; drawing another", candidate)
                continue
            except WorkflowUpdateFailedError as err:
                if not _id_taken(err) or job_id is not None:
                    raise
                log.info("job id %s is taken in storage; drawing another", candidate)
                continue
            except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                return await self._settle_unconfirmed(job, err)
        raise RuntimeError(f"no free job id after {MAX_ID_DRAWS} draws")

    async def cancel_job(self, job_id: str) -> None:
        """Ask the job's workflow to cancel; it leaves the queue or is stopped on its agent."""
        try:
            await self.client.get_workflow_handle(job_id).cancel()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                # The workflow ended after the job was read; its end is being recorded.
                raise JobAlreadyFinishedError(f"job {job_id} already finished") from err
            raise TemporalUnavailableError(f"Temporal is unavailable: {err}") from err

    async def notify_job(self, job_id: str, reported: JobStatus | None = None) -> None:
        """The job's agent says it ended, and perhaps how (`reported`): act now, not at the tick."""
        try:
            await self.client.get_workflow_handle(job_id).signal(JobWorkflow.poll_now, reported)
        except RPCError as err:
            # An ended or unknown job has nothing to act on, and the answer does not say which.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise TemporalUnavailableError(f"Temporal is unavailable: {err}") from err

    async def unfinished_jobs(self, agent_id: str) -> list[JobInfo]:
        """The agent's running job, then its queued jobs in queue order."""
        running = await self._storage.get_running_job(agent_id)
        queued = await self._storage.get_queued_jobs(agent_id)
        return [*([running] if running is not None else []), *queued]

    async def cancel_agent_jobs(self, agent_id: str, skip: Collection[str] = ()) -> list[str]:
        """Cancel the agent's queued and running jobs but `skip`; the ids of those cancelled."""
        # A job that ends meanwhile is passed over; Temporal down raises TemporalUnavailableError.
        cancelled = []
        # The queue from its tail first, the running job last: the agent it frees is not
        # handed to a job about to be cancelled.
        for job in reversed(await self.unfinished_jobs(agent_id)):
            if job.job_id in skip:
                continue
            try:
                await self.cancel_job(job.job_id)
            except JobAlreadyFinishedError:
                continue
            cancelled.append(job.job_id)
        return cancelled

    async def agent_queue(self, agent_id: str) -> QueueSnapshot:
        """The agent's running job and queue, as its queue workflow sees them."""
        handle = self.client.get_workflow_handle_for(
            AgentQueueWorkflow.run, queue_workflow_id(agent_id)
        )
        return await handle.query(AgentQueueWorkflow.snapshot)

    async def _start(self, inp: JobInput, experiment_name: str, *, join_existing: bool) -> JobInfo:
        """Update-with-start: the job's workflow begins and answers its record once queued (a
        concurrent repeat of a keyed submission gets that same record)."""
        job = inp.job
        start = WithStartWorkflowOperation(
            JobWorkflow.run,
            inp,
            id=job.job_id,
            task_queue=self._settings.task_queue,
            # A keyed retry joins the workflow its first try started.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
            if join_existing
            else WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(AGENT_ID_KEY, job.agent_id),
                    SearchAttributePair(EXPERIMENT_ID_KEY, job.experiment_id),
                    SearchAttributePair(JOB_STATUS_KEY, job.status.status.value),
                ]
            ),
            static_summary=f"{experiment_name} ({job.experiment_id}) on agent {job.agent_id}",
        )
        return await self.client.execute_update_with_start_workflow(
            JobWorkflow.submitted,
            start_workflow_operation=start,
            # Without a worker the update would wait for ever: the caller settles it.
            rpc_timeout=timedelta(seconds=self._settings.submission_timeout),
        )

    async def _settle_unconfirmed(self, job: JobInfo, err: BaseException) -> JobInfo:
        """The start was not confirmed: make sure the job never runs, unless it already has.

        Storage is the arbiter: a job that never left its queue (or never got there) is recorded
        FAILED, and its workflow ends without running it when its turn comes; a job the worker
        has already sent to its agent stays, and is the answer.
        """
        reason = str(err) or type(err).__name__
        message = f"{NOT_STARTED}: its workflow could not be confirmed in time ({reason[:200]})"
        try:
            stored = await self._storage.abandon_job(job, message)
        except Exception as storage_err:
            log.exception("job %s: could not record its abandoned start", job.job_id)
            raise SubmissionNotStarted(
                f"job {job.job_id} could not be confirmed and storage cannot be reached to stop "
                f"it: it may still run (see GET /api/v1/jobs/{job.job_id})"
            ) from storage_err
        if stored.status.status is JobStatusEnum.FAILED and stored.status.message == message:
            raise SubmissionNotStarted(
                f"job {job.job_id} was {message}; it will not run: submit it again (check that "
                "a worker serves the task queue)"
            ) from err
        log.info("job %s: its start was not confirmed, but it runs: %s", job.job_id, reason)
        return stored


def _id_taken(err: WorkflowUpdateFailedError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == JOB_ID_TAKEN
