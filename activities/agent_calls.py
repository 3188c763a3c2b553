"""Activities that call an agent: one per endpoint of the agent protocol."""

from __future__ import annotations

from temporalio import activity

from activities.errors import agent_failure
from activities.types import AgentCall, ExecuteCall, JobCall
from common.agent_client import AgentCallError, AgentUtility
from common.models import AgentStatus, JobStatus


class AgentActivities:
    def __init__(self, agents: AgentUtility) -> None:
        self._agents = agents

    @activity.defn
    async def get_agent_status(self, call: AgentCall) -> AgentStatus:
        try:
            return await self._agents.get_agent_status(call.agent_url)
        except AgentCallError as err:
            raise agent_failure(err) from err

    @activity.defn
    async def execute_experiment(self, call: ExecuteCall) -> None:
        try:
            await self._agents.execute_experiment(
                call.agent_url, call.spec, call.job_id, callback_url=call.callback_url
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
