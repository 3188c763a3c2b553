"""Request and answer bodies of the server's HTTP API (field names are the existing contract)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.models import AgentStatus, ExperimentSpec, JobInfo, RegisteredAgentInfo

# The charset of experiment ids in common.models, used for every id the API accepts: ids end
# up in URLs, workflow ids and log lines, so nothing outside it (no '/', no leading '.').
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
ID_MAX_LENGTH = 128
ID_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 128"


def _id_field(what: str) -> Any:
    return Field(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description=f"The {what}'s id ({ID_RULE})",
    )


def _id_path(what: str) -> Any:
    return Path(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description=f"The {what}'s id ({ID_RULE})",
    )


AgentIdPath = Annotated[str, _id_path("agent")]
ExperimentIdPath = Annotated[str, _id_path("experiment")]
JobIdPath = Annotated[str, _id_path("job")]


def is_valid_id(value: str) -> bool:
    """Whether `value` follows the id rule (for ids the API did not receive in a request)."""
    return 0 < len(value) <= ID_MAX_LENGTH and re.fullmatch(ID_PATTERN, value) is not None


# Scheme, host name or IPv4 address, optional port (0-65535), optional path of URL characters:
# what the agent client can call. The schema carries it, so every client sees the rule.
AGENT_URL_PATTERN = (
    r"^https?://[A-Za-z0-9\-._~]+"
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*)?$"
)


def _agent_url(value: str) -> str:
    try:
        httpx.URL(value)
    except httpx.InvalidURL as err:
        raise ValueError(f"not a usable URL: {err}") from err
    return value.rstrip("/")


class RequestBody(BaseModel):
    """Base of request bodies: fields other Ruckus clients add are ignored."""

    model_config = ConfigDict(extra="ignore")


# Agents


class RegisterAgentRequest(RequestBody):
    agent_url: Annotated[
        str, Field(max_length=2048, pattern=AGENT_URL_PATTERN), AfterValidator(_agent_url)
    ] = Field(
        description="Base URL of the agent (http or https, host, port, path); the server "
        "reads its /api/v1/info",
        examples=["http://127.0.0.1:8081"],
    )


class RegisterAgentResponse(BaseModel):
    agent_id: str
    registered_at: datetime = Field(description="The first registration's time, kept on updates")
    agent_url: str | None = Field(default=None, description="Where the server reaches the agent")


class UnregisterAgentRequest(RequestBody):
    agent_id: Annotated[str, _id_field("agent")]


class UnregisterAgentResponse(BaseModel):
    agent_id: str
    cancelled_jobs: list[str] = Field(
        description="Jobs of the agent that were queued or running and are now cancelled"
    )


class AgentListResponse(BaseModel):
    agents: list[RegisteredAgentInfo]


class AgentInfoAnswer(BaseModel):
    agent: RegisteredAgentInfo


class AgentStatusListResponse(BaseModel):
    agents: list[AgentStatus]


class AgentStatusAnswer(BaseModel):
    agent: AgentStatus


# Experiments


# Names are for people and lists: a few hundred characters; a description may be longer.
TEXT_LIMITS = {"name": 1024, "model": 1024, "description": 65536}


def _bounded_text(spec: ExperimentSpec) -> ExperimentSpec:
    for field, limit in TEXT_LIMITS.items():
        value = getattr(spec, field)
        if value is not None and len(value) > limit:
            raise ValueError(f"experiment_spec.{field} is longer than {limit} characters")
    return spec


class CreateExperimentRequest(RequestBody):
    experiment_spec: Annotated[ExperimentSpec, AfterValidator(_bounded_text)]


class CreateExperimentResponse(BaseModel):
    experiment_id: str
    created_at: datetime


class ExperimentListResponse(BaseModel):
    experiments: list[ExperimentSpec]


class ExperimentAnswer(BaseModel):
    experiment: ExperimentSpec


class DeleteExperimentResponse(BaseModel):
    experiment_id: str
    deleted_at: datetime


# Jobs


class CreateJobRequest(RequestBody):
    experiment_id: Annotated[str, _id_field("experiment")]
    agent_id: Annotated[str, _id_field("agent")]


class JobListResponse(BaseModel):
    jobs: dict[str, list[JobInfo]] = Field(
        description="Jobs grouped by agent id, each list newest first"
    )


# Results


Result = dict[str, Any]


class ResultListResponse(BaseModel):
    results: list[Result] = Field(
        description="Stored results, oldest saved first; each is the agent's JobResult document"
    )


class ResultAnswer(BaseModel):
    result: Result = Field(description="The agent's JobResult document for the job")


# Health


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded"] = Field(
        description="`degraded` while storage or Temporal is unreachable"
    )
    version: str
    storage: str = Field(description="`ok`, or `unavailable: <reason>`")
    temporal: str = Field(description="`ok`, or `unavailable: <reason>`")


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it")
