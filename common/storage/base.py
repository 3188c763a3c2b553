"""The StorageBackend contract: what the server keeps, whatever database holds it."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from common.models import (
    AgentStatusEnum,
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    JobStep,
    RegisteredAgentInfo,
)
from common.runs import RunRecord, RunStatus

if TYPE_CHECKING:
    from common.comparison import Comparison


class StorageError(Exception):
    """Base of the typed storage errors."""


class NotFoundError(StorageError):
    """An agent, experiment, job or result with that id does not exist (HTTP 404)."""


class AlreadyExistsError(StorageError):
    """Something with that id exists already (HTTP 409)."""


class ConflictError(StorageError):
    """The change contradicts the current state (HTTP 409)."""


class JobSet(StrEnum):
    """The four per-agent sets of the seed; a job is in exactly one."""

    RUNNING = "running"
    QUEUED = "queued"
    COMPLETED = "completed"
    FAILED = "failed"


def job_set_for(status: JobStatusEnum) -> JobSet:
    """The set a job with this status belongs to."""
    if status is JobStatusEnum.QUEUED:
        return JobSet.QUEUED
    if status in (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING):
        return JobSet.RUNNING
    if status is JobStatusEnum.COMPLETED:
        return JobSet.COMPLETED
    return JobSet.FAILED


class IdempotencyClaim(BaseModel):
    """A client's Idempotency-Key: what it was sent with, what it made, its first answer."""

    key: str
    scope: str
    body_hash: str
    resource_id: str
    response: dict[str, Any] | None = None
    created_at: datetime | None = None


class StorageBackend(abc.ABC):
    """Agents, experiments, the four job sets per agent, results, and runs."""

    # Lifecycle

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Connect and bring the schema up to date (Alembic migrations)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def health_check(self) -> bool:
        """True when the database answers a trivial query."""

    # Agents

    @abc.abstractmethod
    async def register_agent(self, agent: RegisteredAgentInfo) -> None:
        """Raises AlreadyExistsError when the agent id is registered."""

    @abc.abstractmethod
    async def get_agent(self, agent_id: str) -> RegisteredAgentInfo:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def list_agents(self) -> list[RegisteredAgentInfo]: ...

    @abc.abstractmethod
    async def update_agent(self, agent: RegisteredAgentInfo) -> None:
        """Replace the agent's URL and info (its registration time is kept); NotFoundError."""

    @abc.abstractmethod
    async def update_agent_status(self, agent_id: str, status: AgentStatusEnum) -> None:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def set_agent_notifies(self, agent_id: str, notifies: bool) -> None:
        """Whether the agent reports its jobs' ends (see RegisteredAgentInfo.notifies); an
        unregistered agent is passed over."""

    @abc.abstractmethod
    async def remove_agent(self, agent_id: str) -> None:
        """Raises NotFoundError. The agent's jobs and results are kept as history."""

    # Experiments

    @abc.abstractmethod
    async def create_experiment(self, spec: ExperimentSpec) -> ExperimentSpec:
        """Raises AlreadyExistsError for a duplicate id."""

    @abc.abstractmethod
    async def get_experiment(self, experiment_id: str) -> ExperimentSpec:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def list_experiments(self) -> list[ExperimentSpec]: ...

    @abc.abstractmethod
    async def delete_experiment(self, experiment_id: str) -> None:
        """Raises NotFoundError, or ConflictError while the experiment has unfinished jobs."""

    # Jobs: the seed's per-agent sets

    @abc.abstractmethod
    async def get_running_job(self, agent_id: str) -> JobInfo | None: ...

    @abc.abstractmethod
    async def get_queued_jobs(self, agent_id: str) -> list[JobInfo]:
        """In FIFO order: first appended first."""

    @abc.abstractmethod
    async def remove_queued_job(self, agent_id: str, job_id: str) -> None:
        """Raises NotFoundError when the job is not queued for that agent."""

    @abc.abstractmethod
    async def get_completed_jobs(self, agent_id: str) -> list[JobInfo]: ...

    @abc.abstractmethod
    async def get_failed_jobs(self, agent_id: str) -> list[JobInfo]: ...

    # Jobs: what the orchestration and the API need

    @abc.abstractmethod
    async def create_job(self, job: JobInfo) -> JobInfo:
        """Insert a new job in the set of its status; AlreadyExistsError if the id is taken."""

    @abc.abstractmethod
    async def record_job_status(self, job_id: str, status: JobStatus) -> JobInfo:
        """Atomically set a job's status and move it to the set that status belongs to.

        Idempotent (the same transition twice changes nothing) and final: a job in a
        terminal state keeps it, and the stored JobInfo is returned unchanged. Raises
        NotFoundError for an unknown job, ConflictError if the agent has another running job.
        """

    @abc.abstractmethod
    async def record_job_end(
        self,
        job_id: str,
        status: JobStatus,
        results: dict[str, Any] | None,
        log: str | None = None,
    ) -> JobInfo:
        """Save a job's results and log (when it has them) and record its final status, all or
        nothing.

        Whoever sees the job COMPLETED finds its results. The results are stored as by
        save_experiment_results, under the job's experiment; record_job_status's rules hold.
        """

    @abc.abstractmethod
    async def enqueue_job(self, job: JobInfo, signal: Callable[[], Awaitable[None]]) -> JobInfo:
        """Record a new job at the tail of its agent's queue and call `signal` (the queue
        workflow's enqueue) before the record commits, so storage's queue order is the order
        the queue received its jobs in, across every process.

        A job already stored is returned as it is, with `signal` called again unless it has
        ended (signals are idempotent); ConflictError when the id holds another job.
        """

    @abc.abstractmethod
    async def abandon_job(self, job: JobInfo, message: str) -> JobInfo:
        """A submission that could not be confirmed: a job that never left its queue (or was
        never recorded) is recorded FAILED with `message`, so its workflow will not run it.
        Any other job is returned as stored: it was sent to its agent."""

    @abc.abstractmethod
    async def unfinished_job_counts(self) -> dict[str, int]:
        """Running and queued jobs per agent (agents with none are left out)."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> JobInfo:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        agent_id: str | None = None,
        experiment_id: str | None = None,
        status: JobStatusEnum | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Newest first (by created_time)."""

    # Results

    @abc.abstractmethod
    async def save_experiment_results(self, experiment_id: str, results: dict[str, Any]) -> None:
        """Store one job's results (any JSON object with a `job_id`), replacing earlier ones."""

    @abc.abstractmethod
    async def get_job_results(self, job_id: str) -> dict[str, Any]:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def list_results(self, experiment_id: str | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def get_job_steps(self, job_id: str) -> list[JobStep]:
        """When the job first took each of its statuses, oldest first (none for an unknown job
        or one recorded before steps were kept)."""

    @abc.abstractmethod
    async def get_job_log(self, job_id: str) -> str:
        """The log saved when the job ended; NotFoundError when none was saved."""

    # Submissions and the server's own secrets

    @abc.abstractmethod
    async def claim_idempotency_key(self, claim: IdempotencyClaim) -> IdempotencyClaim:
        """Record the claim, or return the one already stored under its key (claims older than
        a day are forgotten first)."""

    @abc.abstractmethod
    async def complete_idempotency_key(self, key: str, response: dict[str, Any]) -> None:
        """Keep the first successful answer of the key's request."""

    @abc.abstractmethod
    async def forget_idempotency_key(self, key: str) -> None:
        """Drop an unanswered claim: what it would have made was never made."""

    @abc.abstractmethod
    async def server_secret(self, name: str, make: Callable[[], str]) -> str:
        """The secret stored under `name`, made with `make` and stored by the first caller."""

    # Runs

    @abc.abstractmethod
    async def create_run(self, run: RunRecord) -> RunRecord:
        """Insert a new run; AlreadyExistsError if the id is taken."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> RunRecord:
        """Raises NotFoundError."""

    @abc.abstractmethod
    async def list_runs(
        self,
        *,
        experiment_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first (by created_time)."""

    @abc.abstractmethod
    async def record_run_jobs(self, run_id: str, job_ids: list[str]) -> RunRecord:
        """Set the run's jobs, in run order. Idempotent; NotFoundError for an unknown run,
        ConflictError once the run has ended."""

    @abc.abstractmethod
    async def get_run_jobs(self, run_id: str) -> list[JobInfo]:
        """The run's jobs that storage holds, in run order; NotFoundError for an unknown run."""

    @abc.abstractmethod
    async def record_run_end(
        self, run_id: str, status: RunStatus, comparison: Comparison
    ) -> RunRecord:
        """End the run with its comparison, at the current time.

        Final: a run that has ended keeps its end and comparison and is returned unchanged.
        Raises NotFoundError, or ValueError for RUNNING.
        """

    @abc.abstractmethod
    async def get_run_comparison(self, run_id: str) -> Comparison | None:
        """The comparison stored when the run ended; None while it runs. NotFoundError."""
