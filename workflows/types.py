"""Inputs, carried state and query answers of the Ruckus workflows."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from activities.types import QueueState, queue_workflow_id
from common.models import AgentStatusEnum, ExperimentSpec, JobInfo, JobStatus
from common.settings import JobManagerSettings

__all__ = [
    "JOB_REVISION",
    "JobInput",
    "JobPolicy",
    "JobProgress",
    "QueueSnapshot",
    "QueueState",
    "queue_workflow_id",
]


class JobPolicy(BaseModel):
    """The settings a job workflow runs by, fixed when the job is created."""

    polling_interval: float = 5.0
    agent_call_timeout: float = 10.0
    retry_initial_interval: float = 1.0
    retry_maximum_interval: float = 10.0
    retry_maximum_attempts: int = 5
    default_timeout: float = 3600.0
    busy_recheck_initial: float = 2.0
    busy_recheck_maximum: float = 60.0
    continue_as_new_polls: int = 500
    queue_continue_as_new_events: int = 2000
    queue_holder_check: float = 60.0

    @classmethod
    def from_settings(cls, settings: JobManagerSettings) -> JobPolicy:
        return cls(
            polling_interval=settings.job_status_polling_interval,
            agent_call_timeout=settings.agent_call_timeout,
            retry_initial_interval=settings.agent_retry_initial_interval,
            retry_maximum_interval=settings.agent_retry_maximum_interval,
            retry_maximum_attempts=settings.agent_retry_maximum_attempts,
            default_timeout=settings.default_job_timeout,
            busy_recheck_initial=settings.busy_agent_recheck_initial,
            busy_recheck_maximum=settings.busy_agent_recheck_maximum,
            continue_as_new_polls=settings.job_continue_as_new_polls,
            queue_continue_as_new_events=settings.queue_continue_as_new_events,
            queue_holder_check=settings.queue_holder_check_interval,
        )


class JobProgress(BaseModel):
    """What a job carries across continue-as-new once it runs on its agent."""

    dispatched_at: datetime
    deadline: datetime
    last_recorded: JobStatus
    last_recorded_at: datetime


# A job runs the steps of the revision it was started with, so upgrading the workers never
# changes the commands of a job already running (its history must replay).
# 1: the job releases its agent's queue with its own signal.
# 2: its results, final status and release go in one local activity, which saves the job a
#    workflow task and two local activity round trips.
# 3: the agent's status, the job and its ASSIGNED record go in one local activity.
JOB_REVISION = 3


class JobInput(BaseModel):
    job: JobInfo
    spec: ExperimentSpec
    agent_url: str
    agent_status: AgentStatusEnum
    policy: JobPolicy = Field(default_factory=JobPolicy)
    progress: JobProgress | None = None
    # Inputs from before revisions existed carry none: they are revision 1.
    revision: int = 1

    @property
    def timeout(self) -> timedelta:
        seconds = self.spec.timeout_seconds or self.policy.default_timeout
        return timedelta(seconds=seconds)


class QueueSnapshot(BaseModel):
    agent_id: str
    running: str | None
    queued: list[str]
