"""AgentManager: registers agents by URL (again when they move) and reports their live status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from api.errors import AgentUnreachableError
from api.job_manager import JobManager
from api.schemas import ID_RULE, is_valid_id
from common.agent_client import AgentCallError, AgentUtility
from common.models import (
    AgentStatusEnum,
    JobInfo,
    JobStatusEnum,
    RegisteredAgentInfo,
    ServedAgentStatus,
    utcnow,
)
from common.settings import JobManagerSettings, ServerSettings
from common.storage import AlreadyExistsError, NotFoundError, StorageBackend

log = logging.getLogger(__name__)


class AgentManager:
    """Agents as the server knows them (storage), and as they are now (their status endpoint)."""

    def __init__(
        self,
        storage: StorageBackend,
        job_manager: JobManager,
        settings: ServerSettings,
        job_settings: JobManagerSettings,
        require_temporal: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._storage = storage
        self._job_manager = job_manager
        self._settings = settings
        self._job_settings = job_settings
        self._require_temporal = require_temporal
        self._agents: AgentUtility | None = None

    async def start(self) -> None:
        self._agents = AgentUtility.from_settings(self._job_settings)

    async def stop(self) -> None:
        if self._agents is not None:
            await self._agents.aclose()
            self._agents = None

    @property
    def agents(self) -> AgentUtility:
        if self._agents is None:
            raise RuntimeError("the AgentManager is not started")
        return self._agents

    async def register_agent(self, agent_url: str) -> RegisteredAgentInfo:
        """Read the agent's info at `agent_url` and record it under the id the agent reports."""
        try:
            answer = await self.agents.get_agent_info(agent_url)
        except AgentCallError as err:
            raise AgentUnreachableError(
                f"cannot register the agent at {agent_url}: {err}", retryable=err.retryable
            ) from err
        info = answer.agent_info
        if not is_valid_id(info.agent_id):
            raise AgentUnreachableError(
                f"the agent at {agent_url} reports the id {info.agent_id[:200]!r}, which is not "
                f"a valid agent id ({ID_RULE}); give it another one",
                retryable=False,
            )
        agent = RegisteredAgentInfo(
            **info.model_dump(), agent_url=agent_url, registered_at=utcnow()
        )
        try:
            await self._storage.register_agent(agent)
        except AlreadyExistsError:
            return await self._reregister(agent)
        log.info("registered agent %s at %s", agent.agent_id, agent_url)
        return agent

    async def _reregister(self, agent: RegisteredAgentInfo) -> RegisteredAgentInfo:
        """The agent registers again (restarted, moved): its URL and info are updated, its
        registration time and job history kept. It may be another build: its trust to report
        job ends (`notifies`) is earned again, at its next announced end."""
        try:
            known = await self._storage.get_agent(agent.agent_id)
            await self._storage.update_agent(agent)
        except NotFoundError:  # unregistered meanwhile: a first registration after all
            return await self.register_agent(agent.agent_url)
        if known.agent_url != agent.agent_url:
            log.info(
                "agent %s moved from %s to %s", agent.agent_id, known.agent_url, agent.agent_url
            )
        return await self._storage.get_agent(agent.agent_id)

    async def unregister_agent(self, agent_id: str) -> list[str]:
        """Cancel the agent's unfinished jobs, then forget it (history kept); the ids cancelled."""
        await self._storage.get_agent(agent_id)
        # Cancel first: if Temporal is down this fails with 503 and nothing is removed.
        cancelled = await self._cancel_jobs(agent_id)
        await self._storage.remove_agent(agent_id)
        # A job created while the first ones were being cancelled would be left behind.
        try:
            cancelled += await self._job_manager.cancel_agent_jobs(agent_id, skip=cancelled)
        except Exception:
            log.exception("agent %s: cancelling its last jobs failed", agent_id)
        log.info("unregistered agent %s; cancelled jobs %s", agent_id, cancelled or "none")
        return cancelled

    async def list_agents(self) -> list[RegisteredAgentInfo]:
        return await self._storage.list_agents()

    async def get_agent_info(self, agent_id: str) -> RegisteredAgentInfo:
        return await self._storage.get_agent(agent_id)

    async def get_agent_status(self, agent_id: str) -> ServedAgentStatus:
        return await self.live_status(await self._storage.get_agent(agent_id))

    async def list_agent_status(self) -> list[ServedAgentStatus]:
        """Every agent's live status, asked concurrently, each within the status timeout."""
        agents = await self._storage.list_agents()
        return list(await asyncio.gather(*(self.live_status(a) for a in agents)))

    async def refresh_if_unavailable(self, agent_id: str) -> RegisteredAgentInfo | None:
        """The agent's record, re-asked if last seen unavailable so a job is not failed on old
        news; None for an unknown agent (job creation names it)."""
        try:
            agent = await self._storage.get_agent(agent_id)
        except NotFoundError:
            return None
        if agent.status is AgentStatusEnum.UNAVAILABLE:
            live = await self.live_status(agent)
            agent = agent.model_copy(update={"status": live.status})
        return agent

    async def live_status(self, agent: RegisteredAgentInfo) -> ServedAgentStatus:
        """The agent's answer, or `unavailable`; a change is recorded as its last-seen status."""
        try:
            async with asyncio.timeout(self._settings.agent_status_timeout):
                answer = await self.agents.get_agent_status(agent.agent_url)
            status = ServedAgentStatus.model_validate(answer.model_dump())
        except (AgentCallError, TimeoutError) as err:
            why = str(err) if err and str(err) else "it did not answer in time"
            log.info("agent %s is unavailable: %s", agent.agent_id, why)
            status = ServedAgentStatus(
                agent_id=agent.agent_id, status=AgentStatusEnum.UNAVAILABLE, reason=why
            )
        if status.agent_id != agent.agent_id:
            log.warning(
                "the agent at %s reports id %s, not %s: another agent took its place",
                agent.agent_url,
                status.agent_id,
                agent.agent_id,
            )
            status = ServedAgentStatus(
                agent_id=agent.agent_id,
                status=AgentStatusEnum.UNAVAILABLE,
                reason=f"another agent ({status.agent_id}) answers at {agent.agent_url}",
            )
        if status.status is not agent.status:
            with contextlib.suppress(NotFoundError):  # unregistered meanwhile
                await self._storage.update_agent_status(agent.agent_id, status.status)
        return status

    async def with_live_progress(self, job: JobInfo) -> JobInfo:
        """A job on its agent as the agent reports it now (running, its stage and progress).

        The stored status changes at the workflow's polls, which are a minute apart for agents
        that report ends. An end is the workflow's to record, with the results: a job the agent
        says ended, or an agent that does not answer in time, leaves the stored status as it is.
        """
        if job.status.status not in (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING):
            return job
        try:
            agent = await self._storage.get_agent(job.agent_id)
            async with asyncio.timeout(self._settings.agent_status_timeout):
                live = await self.agents.get_job_status(agent.agent_url, job.job_id)
        except (NotFoundError, AgentCallError, TimeoutError):
            return job
        if live.status is not JobStatusEnum.RUNNING:
            return job
        update = {
            "status": live.status,
            "message": live.message or job.status.message,
            "stage": live.stage,
            "progress": live.progress,
        }
        return job.model_copy(update={"status": job.status.model_copy(update=update)})

    async def with_live_progress_all(self, jobs: list[JobInfo]) -> list[JobInfo]:
        """`with_live_progress` for each job, asked concurrently."""
        return list(await asyncio.gather(*(self.with_live_progress(job) for job in jobs)))

    async def _cancel_jobs(self, agent_id: str) -> list[str]:
        if self._require_temporal is not None and await self._job_manager.unfinished_jobs(agent_id):
            await self._require_temporal()
        return await self._job_manager.cancel_agent_jobs(agent_id)
