"""The activities of one job: send it, poll it, cancel it, record it, and end it."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_queue import QueueRelease, release
from activities.errors import AGENT_BUSY, AGENT_STATUS_FAILED, STORAGE_CONFLICT, agent_failure
from common.agent_client import AgentCallError, AgentUtility
from common.callbacks import callback_url
from common.models import (
    AgentStatusEnum,
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    utcnow,
)
from common.storage import ConflictError, StorageBackend

SENT_MESSAGE = "job sent to the agent"
# The ASSIGNED record is tried once in dispatch; the workflow's own durable write takes over after.
RECORD_ONCE_TIMEOUT_S = 10.0


class JobCall(BaseModel):
    agent_url: str
    job_id: str


class ExecuteCall(JobCall):
    spec: ExperimentSpec


class Dispatch(BaseModel):
    """What dispatching a job found: the agent's status, and whether the job went out."""

    agent: AgentStatusEnum
    # The ASSIGNED status when the agent took the job; None when it did not.
    sent: JobStatus | None = None
    # The job's record once storage took that status; None when the workflow must record it.
    stored: JobInfo | None = None


class StatusRecord(BaseModel):
    job_id: str
    status: JobStatus


class JobEnd(BaseModel):
    """A job's last step: its results from the agent, its final status, its agent freed."""

    job_id: str
    experiment_id: str
    agent_id: str
    # None when the job never reached its agent: there are no results to fetch.
    agent_url: str | None
    status: JobStatus
    agent_attempts: int
    # False when the job never joined its agent's queue: there is nothing to release.
    release: bool


class JobActivities:
    def __init__(
        self,
        storage: StorageBackend,
        agents: AgentUtility,
        callback_base_url: str | None = None,
        callback_secret: str | None = None,
    ) -> None:
        self._storage = storage
        self._agents = agents
        self._callback_base_url = callback_base_url
        self._callback_secret = callback_secret

    @activity.defn
    async def dispatch(self, call: ExecuteCall) -> Dispatch:
        """Send the job if its agent is idle, then record it ASSIGNED: one round trip, not three.

        A retry after the job was sent finds the agent busy with this very job and sends it
        again, which the agent answers without running it twice.
        """
        try:
            agent = await self._agents.get_agent_status(call.agent_url)
        except AgentCallError as err:
            # Named apart, retried alike: a job whose dispatch ends here has nothing on the agent.
            failure = agent_failure(err)
            raise ApplicationError(
                failure.message, type=AGENT_STATUS_FAILED, non_retryable=failure.non_retryable
            ) from err
        ours = call.job_id in (agent.current_job_id, *agent.running_jobs)
        if agent.status is not AgentStatusEnum.IDLE and not ours:
            return Dispatch(agent=agent.status)
        # Signed here, so the callback's token never enters workflow history.
        callback = None
        if self._callback_base_url:
            callback = callback_url(self._callback_base_url, call.job_id, self._callback_secret)
        try:
            await self._agents.execute_experiment(
                call.agent_url, call.spec, call.job_id, callback_url=callback
            )
        except AgentCallError as err:
            failure = agent_failure(err)
            if failure.type == AGENT_BUSY:  # another job took the agent since its status
                return Dispatch(agent=AgentStatusEnum.ACTIVE)
            raise failure from err
        sent = JobStatus(status=JobStatusEnum.ASSIGNED, message=SENT_MESSAGE, timestamp=utcnow())
        try:
            async with asyncio.timeout(RECORD_ONCE_TIMEOUT_S):
                stored = await self._storage.record_job_status(call.job_id, sent)
        except Exception as err:  # the workflow records it durably, or meets the conflict itself
            activity.logger.warning("job %s: ASSIGNED not recorded yet: %s", call.job_id, err)
            return Dispatch(agent=agent.status, sent=sent)
        return Dispatch(agent=agent.status, sent=sent, stored=stored)

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

    @activity.defn
    async def record_job_status(self, record: StatusRecord) -> JobInfo:
        """Move the job to the set its status belongs to (idempotent, terminal states final)."""
        try:
            return await self._storage.record_job_status(record.job_id, record.status)
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err

    @activity.defn
    async def end_job(self, end: JobEnd) -> JobInfo:
        """Store the job's results with its final status, then free its agent for the next job.

        One activity for the last steps of a job: each is idempotent, so a retry repeats them
        safely, and the results (megabytes, perhaps) never enter workflow history. Results the
        agent still cannot give after `agent_attempts` tries are logged and given up.
        """
        results = None
        if end.agent_url is not None:
            try:
                results = await self._fetch_results(end.agent_url, end.job_id, end.agent_attempts)
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                activity.logger.error("job %s: results could not be retrieved: %s", end.job_id, err)
        if results is not None:
            # Stored under the job that made them, whatever the agent wrote.
            results["job_id"] = end.job_id
            results.setdefault("experiment_id", end.experiment_id)
        try:
            stored = await self._storage.record_job_end(end.job_id, end.status, results)
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err
        # Only once the end is stored: the next job's ASSIGNED record needs the agent free.
        if end.release:
            await release(activity.client(), QueueRelease(agent_id=end.agent_id, job_id=end.job_id))
        return stored

    async def _fetch_results(
        self, agent_url: str, job_id: str, agent_attempts: int
    ) -> dict[str, Any] | None:
        """The job's results from its agent, or None; non-retryable once out of tries."""
        try:
            return await self._agents.get_experiment_results(agent_url, job_id)
        except AgentCallError as err:
            if err.status_code == 404:
                return None
            failure = agent_failure(err)
            if activity.info().attempt >= agent_attempts:
                failure = ApplicationError(str(err), type=failure.type, non_retryable=True)
            raise failure from err
