"""The activity that puts a job in its agent's queue, starting the queue on demand."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from activities.types import QUEUE_WORKFLOW_TYPE, QueueEntry, QueueState, queue_workflow_id
from common.temporal import AGENT_ID_KEY


@activity.defn
async def join_agent_queue(entry: QueueEntry) -> None:
    """Signal-with-start through the client: a workflow cannot start another one itself."""
    await activity.client().start_workflow(
        QUEUE_WORKFLOW_TYPE,
        QueueState(
            agent_id=entry.agent_id,
            continue_as_new_events=entry.queue_continue_as_new_events,
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
