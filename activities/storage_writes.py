"""Activities that write the server's durable record."""

from __future__ import annotations

import contextlib
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import STORAGE_CONFLICT, agent_failure
from activities.queue import signal_release
from activities.types import JobEnd, QueueHolder, QueueRelease, ResultsTransfer, StatusRecord
from common.agent_client import AgentCallError, AgentUtility
from common.models import JobInfo, JobStatus, JobStatusEnum, utcnow
from common.storage import ConflictError, NotFoundError, StorageBackend


class StorageActivities:
    def __init__(self, storage: StorageBackend, agents: AgentUtility) -> None:
        self._storage = storage
        self._agents = agents

    @activity.defn
    async def record_job_status(self, record: StatusRecord) -> JobInfo:
        """Move the job to the set its status belongs to (idempotent, terminal states final)."""
        try:
            return await self._storage.record_job_status(record.job_id, record.status)
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err

    @activity.defn
    async def transfer_results(self, transfer: ResultsTransfer) -> bool:
        """Fetch a job's results from its agent and save them; False when the agent has none.

        One activity for both steps so results (megabytes, perhaps) never enter workflow history.
        The agent gets `agent_attempts` tries; saving is retried until the database answers.
        """
        results = await self._fetch_results(
            transfer.agent_url, transfer.job_id, transfer.agent_attempts
        )
        if results is None:
            return False
        await self._save_results(results, transfer.job_id, transfer.experiment_id)
        return True

    @activity.defn
    async def end_job(self, end: JobEnd) -> JobInfo:
        """Store the job's results with its final status, then free its agent for the next job.

        One activity for the last steps of a job: each is idempotent, so a retry repeats them
        safely, and the job ends in one round trip instead of three. Results the agent still
        cannot give after `agent_attempts` tries are logged and given up.
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
            _name_job(results, end.job_id, end.experiment_id)
        try:
            stored = await self._storage.record_job_end(end.job_id, end.status, results)
        except ConflictError as err:
            raise ApplicationError(str(err), type=STORAGE_CONFLICT, non_retryable=True) from err
        # Only once the end is stored: the next job's ASSIGNED record needs the agent free.
        if end.release:
            await signal_release(QueueRelease(agent_id=end.agent_id, job_id=end.job_id))
        return stored

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

    async def _save_results(self, results: dict[str, Any], job_id: str, experiment_id: str) -> None:
        _name_job(results, job_id, experiment_id)
        await self._storage.save_experiment_results(experiment_id, results)


def _name_job(results: dict[str, Any], job_id: str, experiment_id: str) -> None:
    """Results are stored under the job that made them, whatever the agent wrote."""
    results["job_id"] = job_id
    results.setdefault("experiment_id", experiment_id)
