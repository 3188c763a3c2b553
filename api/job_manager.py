"""JobManager: creates jobs as Temporal workflows and answers questions about them."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import timedelta

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.agent_queue import QueueSnapshot, queue_workflow_id
from common.job_ids import JobUtility
from common.models import JobInfo, JobStatus, JobStatusEnum, RegisteredAgentInfo, utcnow
from common.settings import JobManagerSettings
from common.storage import AlreadyExistsError, ConflictError, NotFoundError, StorageBackend
from common.temporal import AGENT_ID_KEY, EXPERIMENT_ID_KEY, JOB_STATUS_KEY, connect_temporal
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobInput, JobWorkflow

log = logging.getLogger(__name__)

MAX_ID_DRAWS = 20
SUBMIT_TIMEOUT = timedelta(seconds=30)


class JobAlreadyFinishedError(ConflictError):
    """The job has reached a terminal state; it cannot be cancelled."""


class TemporalUnavailableError(Exception):
    """Temporal did not answer; the job was not created."""


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
        # Serialises submissions per agent so queue order is submission order.
        self._agent_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def start(self) -> None:
        if self._client is None:
            self._client = await connect_temporal(
                self._settings.temporal_namespace, self._settings.payload_key
            )

    async def stop(self) -> None:
        self._agent_locks.clear()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise TemporalUnavailableError("the JobManager is not started")
        return self._client

    async def create_job(
        self, experiment_id: str, agent_id: str, agent: RegisteredAgentInfo | None = None
    ) -> JobInfo:
        """Record the job, start its workflow, and answer once it waits in its agent's queue.

        `agent` is the agent's record when the caller has just read it. Raises NotFoundError
        for an unknown experiment or agent before anything starts.
        """
        spec = await self._storage.get_experiment(experiment_id)
        if agent is None or agent.agent_id != agent_id:
            agent = await self._storage.get_agent(agent_id)
        policy = self._settings.policy
        # One submission at a time per agent: queue order is submission order.
        async with self._agent_locks[agent_id]:
            for _ in range(MAX_ID_DRAWS):
                job = await self._record_new_job(experiment_id, agent_id)
                inp = JobInput(
                    job=job,
                    spec=spec,
                    agent_url=agent.agent_url,
                    agent_status=agent.status,
                    policy=policy,
                )
                try:
                    status = await self._start(inp, spec.name)
                except WorkflowAlreadyStartedError:
                    # Temporal remembers a job the storage does not: never reuse its id.
                    await self._storage.remove_queued_job(agent_id, job.job_id)
                    continue
                except RPCError as err:
                    await self._abandon(job, err)
                    raise TemporalUnavailableError(f"Temporal is unavailable: {err}") from err
                return job.model_copy(update={"status": status})
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
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFoundError(f"job {job_id} is not running") from err
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

    async def _record_new_job(self, experiment_id: str, agent_id: str) -> JobInfo:
        for _ in range(MAX_ID_DRAWS):
            job = JobInfo(
                job_id=JobUtility.generate_job_id(),
                experiment_id=experiment_id,
                agent_id=agent_id,
                created_time=utcnow(),
                status=JobStatus(status=JobStatusEnum.QUEUED, message="waiting for the agent"),
            )
            try:
                return await self._storage.create_job(job)
            except AlreadyExistsError:
                log.info("job id %s is taken; drawing another", job.job_id)
        raise RuntimeError(f"no free job id after {MAX_ID_DRAWS} draws")

    async def _start(self, inp: JobInput, experiment_name: str) -> JobStatus:
        """Update-with-start: the job's workflow begins and reports once it is queued."""
        job = inp.job
        start = WithStartWorkflowOperation(
            JobWorkflow.run,
            inp,
            id=job.job_id,
            task_queue=self._settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
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
            # Without a worker the update would wait for ever; the job then stays FAILED.
            rpc_timeout=SUBMIT_TIMEOUT,
        )

    async def _abandon(self, job: JobInfo, err: Exception) -> None:
        """The job could not be started: leave a FAILED record that says why."""
        message = f"could not start the job's workflow: {err}"
        try:
            await self._storage.record_job_status(
                job.job_id, JobStatus(status=JobStatusEnum.FAILED, message=message)
            )
        except Exception:
            log.exception("job %s: could not record its failure to start", job.job_id)
