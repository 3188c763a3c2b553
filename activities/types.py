"""Single-argument inputs of the activities."""

from __future__ import annotations

from pydantic import BaseModel

from common.models import ExperimentSpec, JobStatus


class AgentCall(BaseModel):
    agent_url: str


class JobCall(BaseModel):
    agent_url: str
    job_id: str


class ExecuteCall(BaseModel):
    agent_url: str
    job_id: str
    spec: ExperimentSpec
    callback_url: str | None = None


class ResultsTransfer(BaseModel):
    agent_url: str
    job_id: str
    experiment_id: str


class StatusRecord(BaseModel):
    job_id: str
    status: JobStatus
