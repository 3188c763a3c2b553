"""Jobs to store and the checks the contract repeats: which set holds a job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.models import JobInfo, JobStatus, JobStatusEnum
from common.settings import StorageSettings
from common.storage import JobSet, NotFoundError, SQLStorageBackend, StorageBackend, job_set_for


def open_backend(url: str) -> SQLStorageBackend:
    return SQLStorageBackend(StorageSettings(database_url=url))


T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_job(
    job_id: str,
    status: JobStatusEnum = JobStatusEnum.QUEUED,
    *,
    agent_id: str = "agent-1",
    experiment_id: str = "exp-1",
    created: datetime | None = None,
    at: datetime | None = None,
    message: str = "",
) -> JobInfo:
    return JobInfo(
        job_id=job_id,
        experiment_id=experiment_id,
        agent_id=agent_id,
        created_time=created or T0,
        status=status_of(status, at=at, message=message),
    )


def status_of(status: JobStatusEnum, *, at: datetime | None = None, message: str = "") -> JobStatus:
    return JobStatus(status=status, timestamp=at or T0 + timedelta(minutes=1), message=message)


async def sets_holding(storage: StorageBackend, agent_id: str, job_id: str) -> list[JobSet]:
    """Every per-agent set that holds the job, as the seed's getters report them."""
    running = await storage.get_running_job(agent_id)
    found = [JobSet.RUNNING] if running is not None and running.job_id == job_id else []
    for job_set, getter in (
        (JobSet.QUEUED, storage.get_queued_jobs),
        (JobSet.COMPLETED, storage.get_completed_jobs),
        (JobSet.FAILED, storage.get_failed_jobs),
    ):
        found += [job_set for job in await getter(agent_id) if job.job_id == job_id]
    return found


async def assert_in_one_set(
    storage: StorageBackend, job_id: str, expected: JobStatusEnum, agent_id: str = "agent-1"
) -> JobInfo:
    """The job has `expected` status and sits in exactly the one set that status belongs to."""
    stored = await storage.get_job(job_id)
    assert stored.status.status is expected
    assert await sets_holding(storage, agent_id, job_id) == [job_set_for(expected)]
    return stored


async def assert_gone(storage: StorageBackend, job_id: str, agent_id: str = "agent-1") -> None:
    assert await sets_holding(storage, agent_id, job_id) == []
    with pytest.raises(NotFoundError):
        await storage.get_job(job_id)
