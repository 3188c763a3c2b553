"""The agent queue's protocol: its names, its state, and the activities that join, release and
grant an agent, and check on the job holding it."""

from __future__ import annotations

import contextlib

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import JOB_ID_TAKEN
from common.models import JobInfo, JobStatus, JobStatusEnum, utcnow
from common.storage import ConflictError, NotFoundError, StorageBackend
from common.temporal import AGENT_ID_KEY

QUEUE_WORKFLOW_TYPE = "AgentQueueWorkflow"
# Signals to the queue: a job asks for the agent, or is done with it.
ENQUEUE_SIGNAL = "enqueue"
RELEASE_SIGNAL = "release"
# Signal to a job: the agent is its now.
GRANT_SIGNAL = "grant"
SNAPSHOT_QUERY = "snapshot"


def queue_workflow_id(agent_id: str) -> str:
    return f"agent-queue-{agent_id}"


class QueueState(BaseModel):
    """An agent's queue: the job holding the agent, the jobs waiting, recently finished ids."""

    agent_id: str
    holder: str | None = None
    waiting: list[str] = Field(default_factory=list)
    finished: list[str] = Field(default_factory=list)
    continue_as_new_events: int = 2000
    # Seconds between checks that the holder's workflow is still open (it may be terminated).
    holder_check: float = 60.0


class QueueSnapshot(BaseModel):
    """The queue as its query answers it: the job running on the agent and those waiting."""

    agent_id: str
    running: str | None
    queued: list[str]


class QueueEntry(BaseModel):
    """A job asking for its agent; the queue is started with these settings if it is new."""

    job: JobInfo
    queue_continue_as_new_events: int
    queue_holder_check: float


class QueueRelease(BaseModel):
    agent_id: str
    job_id: str


class QueueGrant(BaseModel):
    job_id: str


class QueueHolder(BaseModel):
    job_id: str


async def join(client: Client, entry: QueueEntry, task_queue: str) -> None:
    """Signal-with-start: the queue begins with its first job, or takes the job at its end."""
    agent_id = entry.job.agent_id
    await client.start_workflow(
        QUEUE_WORKFLOW_TYPE,
        QueueState(
            agent_id=agent_id,
            continue_as_new_events=entry.queue_continue_as_new_events,
            holder_check=entry.queue_holder_check,
        ),
        id=queue_workflow_id(agent_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=ENQUEUE_SIGNAL,
        start_signal_args=[entry.job.job_id],
        static_summary=f"queue of agent {agent_id}",
        search_attributes=TypedSearchAttributes([SearchAttributePair(AGENT_ID_KEY, agent_id)]),
    )


async def release(client: Client, release: QueueRelease) -> None:
    """Tell the agent's queue the job is done with the agent; no queue means nothing to do."""
    handle = client.get_workflow_handle(queue_workflow_id(release.agent_id))
    try:
        await handle.signal(RELEASE_SIGNAL, release.job_id)
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


# The activities run as local activities: a workflow's own signal needs a further workflow task
# to learn it was delivered, and on the path from one job to the next those tasks add up. Every
# signal here is idempotent, so a repeated try is harmless.


@activity.defn
async def release_agent(queue_release: QueueRelease) -> None:
    await release(activity.client(), queue_release)


@activity.defn
async def grant_agent(grant: QueueGrant) -> bool:
    """Hand the agent to a job; False when the job's workflow has already closed."""
    try:
        await activity.client().get_workflow_handle(grant.job_id).signal(GRANT_SIGNAL)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


class QueueActivities:
    """The queue's activities that need storage: joining it, and checking on its holder."""

    def __init__(self, storage: StorageBackend) -> None:
        self._storage = storage

    @activity.defn
    async def join_agent_queue(self, entry: QueueEntry) -> JobInfo:
        """Record the job at the tail of its agent's queue and join the queue's workflow as one
        step (a workflow cannot start another itself: it joins through the client); the job's
        record as stored, which says whether it was abandoned before it got here."""
        client, task_queue = activity.client(), activity.info().task_queue
        try:
            return await self._storage.enqueue_job(
                entry.job, lambda: join(client, entry, task_queue)
            )
        except ConflictError as err:
            raise ApplicationError(str(err), type=JOB_ID_TAKEN, non_retryable=True) from err

    @activity.defn
    async def retire_if_closed(self, holder: QueueHolder) -> bool:
        """True when the job's workflow has closed; a job it left unfinished is recorded FAILED.

        An operator may terminate a job's workflow with the temporal CLI: its agent's queue
        must not wait for it forever, nor its RUNNING record keep the next job out.
        """
        try:
            described = await activity.client().get_workflow_handle(holder.job_id).describe()
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            how = "is gone"
        else:
            status = described.status
            if status is None or status is WorkflowExecutionStatus.RUNNING:
                return False
            how = f"ended ({status.name.lower()})"
        message = f"the job's workflow {how} before the job finished"
        failed = JobStatus(status=JobStatusEnum.FAILED, message=message, timestamp=utcnow())
        # Terminal states are final: a job that did finish keeps its own end.
        with contextlib.suppress(NotFoundError):
            await self._storage.record_job_status(holder.job_id, failed)
        return True
