"""Activities that call an agent: one per endpoint of the agent protocol."""

from __future__ import annotations

from temporalio import activity

from activities.errors import agent_failure
from activities.types import AgentCall, ExecuteCall, JobCall
from common.agent_client import AgentCallError, AgentUtility
from common.callbacks import callback_url
from common.models import AgentStatus, JobStatus


class AgentActivities:
    def __init__(
        self,
        agents: AgentUtility,
        callback_base_url: str | None = None,
        callback_secret: str | None = None,
    ) -> None:
        self._agents = agents
        self._callback_base_url = callback_base_url
        self._callback_secret = callback_secret

    @activity.defn
    async def get_agent_status(self, call: AgentCall) -> AgentStatus:
        try:
            return await self._agents.get_agent_status(call.agent_url)
        except AgentCallError as err:
            raise agent_failure(err) from err

    @activity.defn
    async def execute_experiment(self, call: ExecuteCall) -> None:
        """Send the job; the callback URL is signed here so its token never enters history."""
        callback = None
        if self._callback_base_url:
            callback = callback_url(self._callback_base_url, call.job_id, self._callback_secret)
        try:
            await self._agents.execute_experiment(
                call.agent_url, call.spec, call.job_id, callback_url=callback
            )
        except AgentCallError as err:
            raise agent_failure(err) from err

    @activity.defn
    async def get_job_status(self, call: JobCall) -> JobStatus:
        try:
            return await self._agents.get_job_status(call.agent_url, call.job_id)
        except AgentCallError as err:
            raise agent_failure(err) from err

    @activity.defn
    async def cancel_job(self, call: JobCall) -> None:
        try:
            await self._agents.cancel_job(call.agent_url, call.job_id)
        except AgentCallError as err:
            raise agent_failure(err) from err
