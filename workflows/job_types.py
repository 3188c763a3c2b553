"""What a job's workflow takes, carries and ends with: its input, phase, and outcome."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from common.models import (
    AGENT_RESTARTED,
    AgentStatusEnum,
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
)
from common.settings import JobPolicy


class Phase(IntEnum):
    """Where the job stands; it moves forward, except that a send the agent refused goes back."""

    JOINING = 0  # asking its agent's queue for a place
    WAITING = 1  # in the queue until the agent is its
    GRANTED = 2  # the agent is its: sent once the agent is idle
    SENDING = 3  # on its way: the agent may hold it already
    SENT = 4  # on the agent: polled until it ends
    ENDED = 5


class JobProgress(BaseModel):
    """What a job carries across continue-as-new once it runs on its agent."""

    dispatched_at: datetime
    deadline: datetime


class JobInput(BaseModel):
    job: JobInfo
    spec: ExperimentSpec
    agent_url: str
    agent_status: AgentStatusEnum
    policy: JobPolicy
    progress: JobProgress | None = None
    # Which sending of the job to its agent this is (it is sent again when the agent lost it).
    attempt: int = 1
    # Its agent has shown it reports a job's end: the poll is only a safety net.
    agent_notifies: bool = False
    # Its agent keeps jobs' logs: the job's log is saved with its end.
    agent_keeps_logs: bool = False

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.spec.timeout_seconds or self.policy.default_job_timeout)


class JobEndedElsewhere(Exception):
    """The stored record says the job already ended (it was abandoned at submission)."""


class JobIdTaken(Exception):
    """Storage holds another job under this job's id: the submission draws another."""


# How a job's end shows as its workflow's: completed, or failed with a type that says why.
FAILURE_TYPES = {
    JobStatusEnum.FAILED: "JobFailed",
    JobStatusEnum.TIMEOUT: "JobTimedOut",
    JobStatusEnum.CANCELLED: "JobCancelled",
}


def outcome(final: JobStatus) -> JobStatus:
    """The completed job's status as the workflow's result; any other end fails the workflow
    (its results and status stored, its agent freed), so Temporal's own status tells the truth.
    A job cancelled by request ends its workflow Canceled instead (see `run`)."""
    if final.status is JobStatusEnum.COMPLETED:
        return final
    raise ApplicationError(
        final.message or final.status.value,
        final.model_dump(mode="json"),
        type=FAILURE_TYPES.get(final.status, "JobFailed"),
        non_retryable=True,
    )


def lost(status: JobStatus) -> bool:
    """The agent came back without the job (it restarted): nothing was wrong with the job."""
    return status.status is JobStatusEnum.FAILED and status.error_type == AGENT_RESTARTED


POLL_JITTER = 0.1
# An end a poll finds this long after it happened was not notified in time: the agent missed it.
NOTIFY_GRACE = timedelta(seconds=10)


def poll_interval(policy: JobPolicy, agent_notifies: bool) -> float:
    """The safety net's interval for an agent that reports ends, else the request's; with
    jitter, so the polls of many jobs do not fall on the same second (workflow code)."""
    if agent_notifies:
        base = policy.job_status_safety_polling_interval
    else:
        base = policy.job_status_polling_interval
    return base * workflow.random().uniform(1 - POLL_JITTER, 1 + POLL_JITTER)


def announced_late(reported: JobStatus, now: datetime) -> bool:
    """Whether the end a poll found happened long enough ago that a notification was missed."""
    return now - reported.timestamp > NOTIFY_GRACE
