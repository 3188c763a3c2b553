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
from common.callbacks import CallbackSigner, base_urls
from common.models import (
    AgentStatusEnum,
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    utcnow,
)
from common.storage import ConflictError, NotFoundError, StorageBackend

SENT_MESSAGE = "job sent to the agent"
# Agents bound a job's log themselves; past this much an agent is not believed.
MAX_LOG_BYTES = 16 * 1024 * 1024
# The ASSIGNED record is tried once in dispatch; the workflow's own durable write takes over after.
RECORD_ONCE_TIMEOUT_S = 10.0


class JobCall(BaseModel):
    agent_url: str
    job_id: str


class ExecuteCall(JobCall):
    spec: ExperimentSpec
    attempt: int = 1


class Dispatch(BaseModel):
    """What dispatching a job found: the agent's status, its record, whether the job went out."""

    agent: AgentStatusEnum
    # The job's record after its ASSIGNED write; None when none was tried or storage failed.
    stored: JobInfo | None = None
    # Storage did not take the ASSIGNED record: the workflow writes it durably, then again.
    unrecorded: bool = False
    # The ASSIGNED status when the agent took the job; None when it did not.
    sent: JobStatus | None = None
    # The job went out with callback URLs: its agent may report its end.
    callbacks: bool = False


class StatusRecord(BaseModel):
    job_id: str
    status: JobStatus


class JobEnd(BaseModel):
    """A job's last step: its results from the agent, its final status, its agent freed."""

    job: JobInfo
    # None when the job never reached its agent: there are no results to fetch.
    agent_url: str | None
    status: JobStatus
    agent_attempts: int
    # False when the job never joined its agent's queue: there is nothing to release.
    release: bool
    # The end was only notified: it stands once the agent's own results say the job ended.
    confirm: bool = False
    # What the job showed of its agent: it reported the end (True), or missed it (False).
    agent_notifies: bool | None = None
    # Its agent keeps jobs' logs: fetch this one's to store with the end.
    fetch_log: bool = False


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
        self._callback_bases = base_urls(callback_base_url)
        self._signer = CallbackSigner(storage, callback_secret)

    @activity.defn
    async def dispatch(self, call: ExecuteCall) -> Dispatch:
        """Send the job if its agent is idle, recording it ASSIGNED first: one round trip.

        The record comes before the job goes out: a submission the API gave up on (recorded
        FAILED) is not sent, and the API takes ASSIGNED as proof that the job started. A retry
        after the job was sent finds the agent busy with this very job and sends it again,
        which the agent answers without running it twice.
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
        sending = JobStatus(
            status=JobStatusEnum.ASSIGNED,
            message=SENT_MESSAGE,
            timestamp=utcnow(),
            attempt=call.attempt,
        )
        try:
            async with asyncio.timeout(RECORD_ONCE_TIMEOUT_S):
                stored = await self._storage.record_job_status(call.job_id, sending)
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err
        except Exception as err:  # the workflow records it durably, then dispatches again
            activity.logger.warning("job %s: ASSIGNED not recorded yet: %s", call.job_id, err)
            return Dispatch(agent=agent.status, unrecorded=True)
        if stored.status.status.is_terminal:  # it ended before it was sent: abandoned
            return Dispatch(agent=agent.status, stored=stored)
        try:
            # Signed here, so no token enters workflow history.
            callbacks = await self._signer.urls(self._callback_bases, call.job_id)
            await self._agents.execute_experiment(
                call.agent_url, call.spec, call.job_id, callback_urls=callbacks
            )
        except AgentCallError as err:
            failure = agent_failure(err)
            if failure.type == AGENT_BUSY:  # another job took the agent since its status
                return Dispatch(agent=AgentStatusEnum.ACTIVE, stored=stored)
            raise failure from err
        return Dispatch(agent=agent.status, stored=stored, sent=sending, callbacks=bool(callbacks))

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
    async def end_job(self, end: JobEnd) -> JobInfo | None:
        """Store the job's results with its final status, then free its agent for the next job.

        One activity for the last steps of a job: each is idempotent, so a retry repeats them
        safely, and the results (megabytes, perhaps) never enter workflow history. Results the
        agent still cannot give after `agent_attempts` tries are logged and given up. A notified
        end (`confirm`) stands only when the results say the job ended: None otherwise.
        """
        job_id, results = end.job.job_id, None
        if end.agent_url is not None:
            try:
                results = await self._fetch_results(end.agent_url, job_id, end.agent_attempts)
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                activity.logger.error("job %s: results could not be retrieved: %s", job_id, err)
        status = end.status
        if end.confirm:
            ended = _ended_status(results)
            if ended is None:
                return None
            status = status.model_copy(update={"status": ended})
        if results is not None:
            results = _as_stored(results, end.job, status)
        log = None
        if end.agent_url is not None and end.fetch_log:
            log = await self._fetch_log(end.agent_url, job_id)
        try:
            stored = await self._storage.record_job_end(job_id, status, results, log)
        except NotFoundError:
            if end.release:  # a job that joined its queue has a record
                raise
            # It ended before it joined a queue, where its record is made (agent unavailable).
            stored = await self._storage.create_job(end.job.model_copy(update={"status": status}))
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err
        if end.agent_notifies is not None:
            await self._storage.set_agent_notifies(end.job.agent_id, end.agent_notifies)
        # Only once the end is stored: the next job's ASSIGNED record needs the agent free.
        if end.release:
            agent_id = end.job.agent_id
            await release(activity.client(), QueueRelease(agent_id=agent_id, job_id=job_id))
        return stored

    async def _fetch_log(self, agent_url: str, job_id: str) -> str | None:
        """The job's whole log from its agent, or None when the agent keeps none (an existing
        agent) or cannot give it now; never a reason to hold up the job's end."""
        parts, offset = [], 0
        try:
            while True:
                stretch = await self._agents.get_job_logs(agent_url, job_id, offset)
                parts.append(stretch.text)
                if stretch.complete or not offset < stretch.next_offset <= MAX_LOG_BYTES:
                    return "".join(parts)
                offset = stretch.next_offset
        except AgentCallError as err:
            activity.logger.info("job %s: no log from its agent: %s", job_id, err)
            return "".join(parts) or None

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


def _ended_status(results: dict[str, Any] | None) -> JobStatusEnum | None:
    """The final status the agent's results give, if they say the job ended."""
    try:
        status = JobStatusEnum((results or {}).get("status"))
    except ValueError:
        return None
    return status if status.is_terminal else None


def _as_stored(results: dict[str, Any], job: JobInfo, final: JobStatus) -> dict[str, Any]:
    """Results stored under the job that made them, whatever the agent wrote: our ids win, an
    agent's differing value is kept beside them (`agent_<key>`), its other fields stay."""
    ours: dict[str, Any] = {
        "job_id": job.job_id,
        "experiment_id": job.experiment_id,
        "agent_id": job.agent_id,
    }
    if final.attempt is not None:
        ours["attempt"] = final.attempt
    for key, value in ours.items():
        theirs = results.get(key)
        if theirs is not None and theirs != value:
            results[f"agent_{key}"] = theirs
    results.update(ours)
    results.setdefault("status", final.status.value)
    return results
