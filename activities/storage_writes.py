"""Activities that write the server's durable record."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import STORAGE_CONFLICT, agent_failure
from activities.types import ResultsTransfer, StatusRecord
from common.agent_client import AgentCallError, AgentUtility
from common.models import JobInfo
from common.storage import ConflictError, StorageBackend


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
        try:
            results = await self._agents.get_experiment_results(transfer.agent_url, transfer.job_id)
        except AgentCallError as err:
            if err.status_code == 404:
                return False
            failure = agent_failure(err)
            if activity.info().attempt >= transfer.agent_attempts:
                failure = ApplicationError(str(err), type=failure.type, non_retryable=True)
            raise failure from err
        results["job_id"] = transfer.job_id
        results.setdefault("experiment_id", transfer.experiment_id)
        await self._storage.save_experiment_results(transfer.experiment_id, results)
        return True
