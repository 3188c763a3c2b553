"""Request and answer bodies of the server's HTTP API (field names are the existing contract)."""

from __future__ import annotations

import functools
import operator
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from temporalio.contrib.pydantic import pydantic_data_converter

from common.limits import MAX_DEPTH, MAX_EXPERIMENT_BYTES, json_size, problems
from common.models import (
    ExperimentCapabilityRequirements,
    ExperimentSpec,
    JobInfo,
    JobStep,
    MetricsSpec,
    RegisteredAgentInfo,
    ServedAgentStatus,
    TaskType,
)
from common.params import MAX_TIMEOUT_SECONDS, TASK_KINDS, check_spec
from common.runs import LabelSelector

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


def _refuse(errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data("request body", errors)


def _error(kind: str, message: str, location: tuple[str | int, ...]) -> InitErrorDetails:
    # The offending value is not echoed: it is what broke the bound.
    return {"type": PydanticCustomError(kind, message), "loc": location, "input": None}


class RequestBody(BaseModel):
    """Base of request bodies: fields other Ruckus clients add are ignored.

    Every field's value nests at most MAX_DEPTH levels, holds only finite numbers and valid
    Unicode (see common.limits); what breaks a bound is a 422 naming the place.
    """

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        places: list[tuple[tuple[str, ...], Any]] = (
            [((key,), value) for key, value in data.items()]
            if isinstance(data, dict)
            else [((), data)]
        )
        found = [
            _error(kind, message, (*prefix, *location))
            for prefix, value in places
            for location, kind, message in problems(value, MAX_DEPTH)
        ]
        _refuse(found)
        cls._check_bounded(data)
        return data

    @classmethod
    def _check_bounded(cls, data: Any) -> None:
        """Checks of a body known to be shallow, finite and encodable (raise ValidationError)."""


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
    agents: list[ServedAgentStatus]


class AgentStatusAnswer(BaseModel):
    agent: ServedAgentStatus


# Experiments


# Names are for people and lists: a few hundred characters; a description may be longer.
TEXT_LIMITS = {"name": 1024, "model": 1024, "description": 65536}


def _bounded_text(spec: ExperimentSpec) -> ExperimentSpec:
    for field, limit in TEXT_LIMITS.items():
        value = getattr(spec, field)
        if value is not None and len(value) > limit:
            raise ValueError(f"experiment_spec.{field} is longer than {limit} characters")
    return spec


def _valid_experiment(value: Any) -> ExperimentSpec:
    """The spec, checked as a job will run it; errors are located in the document."""
    spec = ExperimentSpec.model_validate(value)
    _bounded_text(spec)
    check_spec(spec)
    # As a job's workflow carries it: what the worker could not decode is refused here.
    converter = pydantic_data_converter.payload_converter
    try:
        converter.from_payloads(converter.to_payloads([spec]), [ExperimentSpec])
    except Exception as err:
        raise ValueError(f"a job's workflow could not carry this experiment: {err}") from err
    return spec


# The experiment document as the schema shows it: one variant per task type, its params typed.
# Only for the schema; `_valid_experiment` validates (with errors located as in the document).


CLOSED = ConfigDict(extra="forbid")


class _Closed(BaseModel):
    model_config = CLOSED


class _ExperimentDocument(ExperimentSpec):
    model_config = CLOSED


class _MetricsDocument(MetricsSpec):
    model_config = CLOSED


class _RequirementsDocument(ExperimentCapabilityRequirements):
    model_config = CLOSED

    timeout_seconds: int = Field(
        default=3600, gt=0, le=MAX_TIMEOUT_SECONDS, description="The job deadline"
    )


def _document(task_type: TaskType) -> type[BaseModel]:
    kind = TASK_KINDS[task_type]
    title = "".join(word.title() for word in task_type.split("_"))
    params = kind.params_model | None
    # Params with required names are required in the task (the schema is stricter than the
    # server, which also takes them from framework.params).
    required = any(f.is_required() for f in kind.params_model.model_fields.values())
    task_params = (kind.params_model, ...) if required else (params, None)
    accepted = tuple(str(f) for f in sorted(kind.accepted_frameworks))
    task = create_model(
        f"{title}Task",
        __base__=_Closed,
        name=(str, ...),
        type=(Literal[task_type.value], ...),
        description=(str | None, None),
        params=task_params,
    )
    framework = create_model(
        f"{title}Framework",
        __base__=_Closed,
        name=(Literal[accepted], "unknown"),  # type: ignore[valid-type]
        params=(params, Field(default=None, description="Overlaid by task.params")),
    )
    return create_model(
        f"{title}Experiment",
        __base__=_ExperimentDocument,
        name=(str, Field(min_length=1, max_length=TEXT_LIMITS["name"])),
        model=(str, Field(max_length=TEXT_LIMITS["model"])),
        description=(str | None, Field(default=None, max_length=TEXT_LIMITS["description"])),
        task=(task, ...),
        framework=(framework, Field(default_factory=framework)),
        metrics=(_MetricsDocument, Field(default_factory=_MetricsDocument)),
        capability_requirements=(_RequirementsDocument | None, None),
    )


ExperimentDocument = functools.reduce(operator.or_, (_document(t) for t in TaskType))


class CreateExperimentRequest(RequestBody):
    experiment_spec: Annotated[
        ExperimentSpec, PlainValidator(_valid_experiment, json_schema_input_type=ExperimentDocument)
    ] = Field(
        description=f"The experiment: at most {MAX_EXPERIMENT_BYTES // 1024} KiB as JSON, "
        f"nested at most {MAX_DEPTH} levels; `task.params` as its task type takes them "
        "(unknown names are refused)"
    )

    @classmethod
    def _check_bounded(cls, data: Any) -> None:
        if isinstance(data, dict) and "experiment_spec" in data:
            size = json_size(data["experiment_spec"])
            if size > MAX_EXPERIMENT_BYTES:
                message = (
                    f"the experiment is {size} bytes as JSON; at most {MAX_EXPERIMENT_BYTES} "
                    "are accepted"
                )
                _refuse([_error("too_large", message, ("experiment_spec",))])


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


class Selector(LabelSelector):
    """Agents whose labels (`ruckus agent --label key=value`) include all of these."""

    labels: dict[
        Annotated[str, Field(min_length=1, max_length=128)],
        Annotated[str, Field(max_length=1024)],
    ] = Field(default_factory=dict, max_length=32)


class CreateJobRequest(RequestBody):
    experiment_id: Annotated[str, _id_field("experiment")]
    # Without an agent, Ruckus picks the fitting agent with the fewest running and queued
    # jobs, among those the selector admits.
    agent_id: Annotated[str, _id_field("agent")] | None = None
    selector: Selector | None = None


class Placement(BaseModel):
    """Which agent Ruckus chose for a job without `agent_id`, and why."""

    agent_id: str
    reason: str


class CreatedJob(JobInfo):
    """The new job; `placement` says why its agent was chosen when none was named."""

    placement: Placement | None = None


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


class JobStepsAnswer(BaseModel):
    job_id: str
    steps: list[JobStep] = Field(
        description="When the job first took each status, oldest first: queued, assigned, "
        "running, its end (a job recorded before steps were kept has none)"
    )
