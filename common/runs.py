"""A run: one experiment on several agents (each perhaps several times), and its record."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from common.models import AwareDatetime, JobInfo, WireModel

MAX_REPEATS = 20
RUN_ID_PATTERN = r"^run_[0-9a-f]{12}$"


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:12]}"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self is not RunStatus.RUNNING


class LabelSelector(BaseModel):
    """Agents whose labels include every one of these."""

    labels: dict[str, str] = Field(default_factory=dict)


class RunRecord(WireModel):
    """What storage keeps of a run; its jobs are listed in agent, then repeat order."""

    run_id: str
    experiment_id: str
    agents: list[str]
    repeats: int = Field(ge=1, le=MAX_REPEATS)
    selector: LabelSelector | None = None
    created_time: AwareDatetime
    ended_time: AwareDatetime | None = None
    status: RunStatus = RunStatus.RUNNING
    job_ids: list[str] = Field(default_factory=list)


class RunInfo(WireModel):
    """A run as the API answers it: its record with its jobs' current state."""

    run_id: str
    experiment_id: str
    agents: list[str]
    repeats: int
    selector: LabelSelector | None = None
    created_time: datetime
    ended_time: datetime | None = None
    status: RunStatus
    jobs: list[JobInfo]

    @classmethod
    def of(cls, run: RunRecord, jobs: list[JobInfo]) -> RunInfo:
        fields = run.model_dump(exclude={"job_ids"})
        return cls(**fields, jobs=jobs)
