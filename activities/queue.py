"""Activities that pass an agent between jobs: join its queue, release it, grant it."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.types import (
    QUEUE_WORKFLOW_TYPE,
    QueueEntry,
    QueueGrant,
    QueueRelease,
    QueueState,
    queue_workflow_id,
)
from common.temporal import AGENT_ID_KEY


@activity.defn
async def join_agent_queue(entry: QueueEntry) -> None:
    """Signal-with-start through the client: a workflow cannot start another one itself."""
    await activity.client().start_workflow(
        QUEUE_WORKFLOW_TYPE,
        QueueState(
            agent_id=entry.agent_id,
            continue_as_new_events=entry.queue_continue_as_new_events,
            holder_check=entry.queue_holder_check,
        ),
        id=queue_workflow_id(entry.agent_id),
        task_queue=activity.info().task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="enqueue",
        start_signal_args=[entry.job_id],
        static_summary=f"queue of agent {entry.agent_id}",
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(AGENT_ID_KEY, entry.agent_id)]
        ),
    )


# Signals sent from a local activity rather than by the workflow itself: a workflow's own
# signal needs a further workflow task to learn it was delivered, and on the path from one job
# to the next those tasks add up. Both signals are idempotent, so a repeated try is harmless.


@activity.defn
async def release_agent(release: QueueRelease) -> None:
    """Tell the agent's queue the job is done with the agent; no queue means nothing to do."""
    await signal_release(release)


async def signal_release(release: QueueRelease) -> None:
    """The release signal itself, also sent by the activity that ends a job."""
    handle = activity.client().get_workflow_handle(queue_workflow_id(release.agent_id))
    try:
        await handle.signal("release", release.job_id)
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


@activity.defn
async def grant_agent(grant: QueueGrant) -> bool:
    """Hand the agent to a job; False when the job's workflow has already closed."""
    try:
        await activity.client().get_workflow_handle(grant.job_id).signal("grant")
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
