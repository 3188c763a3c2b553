"""Single-argument inputs of the activities."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.models import AgentStatusEnum, ExperimentSpec, JobInfo, JobStatus


class AgentCall(BaseModel):
    agent_url: str


class JobCall(BaseModel):
    agent_url: str
    job_id: str


class ExecuteCall(BaseModel):
    agent_url: str
    job_id: str
    spec: ExperimentSpec


class Dispatch(BaseModel):
    """What dispatching a job found: the agent's status, and whether the job went out."""

    agent: AgentStatusEnum
    # The ASSIGNED status when the agent took the job; None when it did not.
    sent: JobStatus | None = None
    # The job's record once storage took that status; None when the workflow must record it.
    stored: JobInfo | None = None


class ResultsTransfer(BaseModel):
    agent_url: str
    job_id: str
    experiment_id: str
    agent_attempts: int = 5


class QueueRelease(BaseModel):
    agent_id: str
    job_id: str


class JobEnd(BaseModel):
    """A job's last step: its results from the agent, its final status, its agent freed."""

    job_id: str
    experiment_id: str
    agent_id: str
    # None when the job never reached its agent: there are no results to fetch.
    agent_url: str | None
    status: JobStatus
    agent_attempts: int = 5
    # False when the job never joined its agent's queue: there is nothing to release.
    release: bool


class StatusRecord(BaseModel):
    job_id: str
    status: JobStatus


class QueueEntry(BaseModel):
    agent_id: str
    job_id: str
    queue_continue_as_new_events: int = 2000
    queue_holder_check: float = 60.0


class QueueGrant(BaseModel):
    job_id: str


class QueueHolder(BaseModel):
    job_id: str


class QueueState(BaseModel):
    """An agent's queue: the job holding the agent, the jobs waiting, recently finished ids."""

    agent_id: str
    holder: str | None = None
    waiting: list[str] = Field(default_factory=list)
    finished: list[str] = Field(default_factory=list)
    continue_as_new_events: int = 2000
    # Seconds between checks that the holder's workflow is still open (it may be terminated).
    holder_check: float = 60.0


QUEUE_WORKFLOW_TYPE = "AgentQueueWorkflow"


def queue_workflow_id(agent_id: str) -> str:
    return f"agent-queue-{agent_id}"
