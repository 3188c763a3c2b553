"""A run's writes to storage: its record, its jobs in run order, and its end with the comparison."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from common.comparison.source import compare_jobs
from common.runs import RunRecord, RunStatus
from common.storage import AlreadyExistsError, StorageBackend


class RunJobs(BaseModel):
    run_id: str
    job_ids: list[str]


class RunEnd(BaseModel):
    run_id: str
    status: RunStatus


class RunActivities:
    """Idempotent: a retried activity changes nothing twice."""

    def __init__(self, storage: StorageBackend) -> None:
        self._storage = storage

    @activity.defn
    async def create_run(self, run: RunRecord) -> RunRecord:
        """Record the run; one recorded already (a retry, a resubmission) is kept as it is."""
        try:
            return await self._storage.create_run(run)
        except AlreadyExistsError:
            return await self._storage.get_run(run.run_id)

    @activity.defn
    async def record_run_jobs(self, jobs: RunJobs) -> RunRecord:
        return await self._storage.record_run_jobs(jobs.run_id, jobs.job_ids)

    @activity.defn
    async def end_run(self, end: RunEnd) -> RunRecord:
        """Compare the run's jobs as storage holds them, and store that with the run's end."""
        comparison = await compare_jobs(self._storage, await self._storage.get_run_jobs(end.run_id))
        return await self._storage.record_run_end(end.run_id, end.status, comparison)
