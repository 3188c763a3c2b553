"""The activity that hands a job to its agent: the agent's status, the job, its record."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_calls import AgentActivities
from activities.errors import AGENT_BUSY, AGENT_STATUS_FAILED
from activities.types import AgentCall, Dispatch, ExecuteCall
from common.models import AgentStatusEnum, JobStatus, JobStatusEnum, utcnow
from common.storage import StorageBackend

SENT_MESSAGE = "job sent to the agent"
# The ASSIGNED record is tried once here; the workflow's own durable write takes over after.
RECORD_ONCE_TIMEOUT_S = 10.0


class DispatchActivities:
    def __init__(self, agents: AgentActivities, storage: StorageBackend) -> None:
        self._agents = agents
        self._storage = storage

    @activity.defn
    async def dispatch(self, call: ExecuteCall) -> Dispatch:
        """Send the job if its agent is idle, then record it ASSIGNED: one round trip, not three.

        A retry after the job was sent finds the agent busy with this very job and sends it
        again, which the agent answers without running it twice.
        """
        try:
            agent = await self._agents.get_agent_status(AgentCall(agent_url=call.agent_url))
        except ApplicationError as err:
            # Named apart, retried alike: a job whose dispatch ends here has nothing on the agent.
            raise ApplicationError(
                err.message, type=AGENT_STATUS_FAILED, non_retryable=err.non_retryable
            ) from err
        ours = call.job_id in (agent.current_job_id, *agent.running_jobs)
        if agent.status is not AgentStatusEnum.IDLE and not ours:
            return Dispatch(agent=agent.status)
        try:
            await self._agents.execute_experiment(call)
        except ApplicationError as err:
            if err.type == AGENT_BUSY:  # another job took the agent since its status
                return Dispatch(agent=AgentStatusEnum.ACTIVE)
            raise
        sent = JobStatus(status=JobStatusEnum.ASSIGNED, message=SENT_MESSAGE, timestamp=utcnow())
        try:
            async with asyncio.timeout(RECORD_ONCE_TIMEOUT_S):
                stored = await self._storage.record_job_status(call.job_id, sent)
        except Exception as err:  # the workflow records it durably, or meets the conflict itself
            activity.logger.warning("job %s: ASSIGNED not recorded yet: %s", call.job_id, err)
            return Dispatch(agent=agent.status, sent=sent)
        return Dispatch(agent=agent.status, sent=sent, stored=stored)
