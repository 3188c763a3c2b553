"""Data shapes shared by the agent, the server and the workflows (the wire contract)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _assume_utc(value: datetime) -> datetime:
    """Existing agents send naive UTC timestamps; keep every datetime zone-aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


def utcnow() -> datetime:
    """The current time, zone-aware (never call inside workflow code: use workflow.now())."""
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every protocol model: unknown fields from other Ruckus versions are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class OpenModel(BaseModel):
    """Base of user-authored documents: unknown fields are kept so nothing is lost in storage."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# Enumerations


class AgentType(StrEnum):
    WHITE_BOX = "white_box"
    GRAY_BOX = "gray_box"
    BLACK_BOX = "black_box"


class JobStatusEnum(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES


TERMINAL_JOB_STATUSES = frozenset(
    {
        JobStatusEnum.COMPLETED,
        JobStatusEnum.FAILED,
        JobStatusEnum.CANCELLED,
        JobStatusEnum.TIMEOUT,
    }
)
FAILED_JOB_STATUSES = frozenset(
    {JobStatusEnum.FAILED, JobStatusEnum.CANCELLED, JobStatusEnum.TIMEOUT}
)


class AgentStatusEnum(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


class TaskType(StrEnum):
    LLM_GENERATION = "llm_generation"
    GPU_BENCHMARK = "gpu_benchmark"
    MEMORY_BENCHMARK = "memory_benchmark"
    COMPUTE_BENCHMARK = "compute_benchmark"


class FrameworkName(StrEnum):
    PYTORCH = "pytorch"
    TRANSFORMERS = "transformers"
    VLLM = "vllm"
    TENSORRT = "tensorrt"
    ONNX = "onnx"
    TRITON = "triton"
    NUMPY = "numpy"
    OPENAI = "openai"
    UNKNOWN = "unknown"


class PrecisionType(StrEnum):
    FP64 = "fp64"
    FP32 = "fp32"
    TF32 = "tf32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    FP8 = "fp8"


class PromptRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


# Experiments


class PromptMessage(OpenModel):
    role: PromptRole
    content: str


class PromptTemplate(OpenModel):
    messages: list[PromptMessage] = Field(default_factory=list)
    extra_body: dict[str, Any] | None = None


class TaskSpec(OpenModel):
    name: str
    type: TaskType
    description: str | None = None
    params: Any = None


class FrameworkSpec(OpenModel):
    name: FrameworkName = FrameworkName.UNKNOWN
    params: Any = None


class MetricsSpec(OpenModel):
    metrics: dict[str, Any] = Field(default_factory=dict)


class ExperimentCapabilityRequirements(OpenModel):
    required_capabilities: list[str] = Field(default_factory=list)
    required_metrics: list[str] = Field(default_factory=list)
    optional_metrics: list[str] = Field(default_factory=list)
    gpu_requirements: dict[str, Any] | None = None
    model_requirements: dict[str, Any] | None = None
    system_requirements: dict[str, Any] | None = None
    timeout_seconds: int = Field(default=3600, gt=0, description="The job deadline")


def new_experiment_id() -> str:
    return f"exp_{uuid.uuid4().hex[:12]}"


ExperimentId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
]
# The server's id rule (no '/', no leading '.', so never `..`): ids name files and URLs.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
JOB_ID_MAX_LENGTH = 128
JobId = Annotated[str, Field(min_length=1, max_length=JOB_ID_MAX_LENGTH, pattern=JOB_ID_PATTERN)]


class ExperimentSpec(OpenModel):
    """What to run: a model, a task, a framework and the metrics to collect."""

    id: ExperimentId = Field(default_factory=new_experiment_id)
    name: str = Field(min_length=1)
    description: str | None = None
    model: str
    task: TaskSpec
    framework: FrameworkSpec = Field(default_factory=FrameworkSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    capability_requirements: ExperimentCapabilityRequirements | None = None
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)

    @property
    def timeout_seconds(self) -> int | None:
        req = self.capability_requirements
        return req.timeout_seconds if req is not None else None


# Jobs


# The error type of a job its agent lost (it restarted while the job ran): sent again, not failed.
AGENT_RESTARTED = "AgentRestarted"


class JobStatus(WireModel):
    """A job's status as reported by the agent at `timestamp`.

    Past the request's three fields, all optional: agents that do not send them still work.
    """

    status: JobStatusEnum
    timestamp: AwareDatetime = Field(default_factory=utcnow)
    message: str = ""
    stage: str | None = Field(
        default=None, max_length=500, description="What the task is doing now, for people"
    )
    progress: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of the task done, when it knows"
    )
    error_type: str | None = Field(
        default=None,
        max_length=200,
        description="Why an ended job failed, as a name: `AgentRestarted` when the agent lost it",
    )
    attempt: int | None = Field(
        default=None, ge=1, description="Which sending of the job to its agent this is"
    )


class AgentJobStatus(JobStatus):
    """An agent's answer for one job: its status, and when it started and ended where known."""

    job_id: str | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None


class ExecuteJobRequest(WireModel):
    """The body of POST /api/v1/jobs on an agent."""

    experiment_spec: ExperimentSpec
    job_id: JobId
    callback_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="Where to POST a JobNotification when the job ends (agents may ignore it)",
    )
    callback_urls: list[Annotated[str, Field(pattern=r"^https?://", max_length=2048)]] | None = (
        Field(
            default=None,
            max_length=16,
            description="The same on every API server, tried in order until one answers",
        )
    )


class JobLog(WireModel):
    """A stretch of a job's log: GET /api/v1/jobs/{job_id}/logs?offset=N (agent and server)."""

    job_id: str
    offset: int = Field(ge=0, description="Where this stretch starts, in bytes of the log")
    next_offset: int = Field(ge=0, description="The offset to ask for next, to follow the log")
    text: str = ""
    complete: bool = Field(
        default=False, description="The job has ended: nothing past next_offset will come"
    )


class JobNotification(WireModel):
    """What an agent POSTs to a job's callback URL when the job ends."""

    job_id: str
    status: JobStatus


class ExecuteJobResponse(WireModel):
    job_id: str
    status: str = "accepted"
    # Set when the job id was already known to the agent: the job is not run again.
    job_status: AgentJobStatus | None = None


class JobResult(WireModel):
    """The outcome of one job on an agent."""

    job_id: str
    experiment_id: str
    status: JobStatusEnum
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    output: Any = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    model_actual: str | None = None
    framework_version: str | None = None
    hardware_info: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None


class JobStep(WireModel):
    """When a job first took a status: one point of its timeline."""

    status: JobStatusEnum
    at: AwareDatetime


class JobInfo(WireModel):
    """The server's record of one job: one experiment on one agent."""

    job_id: str
    experiment_id: str
    agent_id: str
    created_time: AwareDatetime
    status: JobStatus


# Agents

# The capability by which an agent says it keeps its jobs' logs.
JOB_LOGS_CAPABILITY = "job_logs"


class AgentInfo(WireModel):
    agent_id: str
    agent_name: str | None = None
    agent_type: AgentType = AgentType.WHITE_BOX
    # A mapping, not SystemInfo: agents of other versions lay it out in their own ways.
    system_info: dict[str, Any] = Field(default_factory=dict)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    last_updated: AwareDatetime = Field(default_factory=utcnow)
    # Set by whoever runs the agent (`--label key=value`); placement selects on them.
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def keeps_logs(self) -> bool:
        """It serves its jobs' logs (`GET /api/v1/jobs/{job_id}/logs`); existing agents do not."""
        return self.capabilities.get(JOB_LOGS_CAPABILITY) is True


class AgentInfoResponse(WireModel):
    agent_info: AgentInfo


class RegisteredAgentInfo(AgentInfo):
    """An agent as the server knows it: its info, where to reach it, its last known status."""

    agent_url: str
    registered_at: AwareDatetime = Field(default_factory=utcnow)
    status: AgentStatusEnum = AgentStatusEnum.IDLE
    # It has shown it reports a job's end (a notification arrived and its results agreed):
    # its running jobs are polled only as a safety net.
    notifies: bool = False


class ResultType(StrEnum):
    """How a job ended, as existing agents classify results in `available_results`."""

    SUCCESS = "success"
    PARTIAL = "partial"
    CONSTRAINT = "constraint"
    EXECUTION = "execution"
    CANCELLED = "cancelled"


class AvailableResult(WireModel):
    """An entry of `AgentStatus.available_results`: a finished job whose result the agent holds."""

    job_id: str
    completed_at: AwareDatetime | None = None
    # A string, not ResultType: other agents may classify results in their own words.
    result_type: str | None = None


def _available_results(value: Any) -> Any:
    """Entries as objects (older agents of ours listed bare job ids); any other entry is dropped,
    so one odd entry cannot make a whole status unreadable."""
    if not isinstance(value, list):
        return value
    entries: list[Any] = []
    for entry in value:
        if isinstance(entry, str):
            entries.append({"job_id": entry})
        elif isinstance(entry, AvailableResult) or (
            isinstance(entry, dict) and isinstance(entry.get("job_id"), str)
        ):
            entries.append(entry)
    return entries


class AgentStatus(WireModel):
    agent_id: str
    status: AgentStatusEnum
    running_jobs: list[str] = Field(default_factory=list)
    queued_jobs: list[str] = Field(default_factory=list)
    current_job_id: str | None = None
    current_experiment_id: str | None = None
    uptime_seconds: float = 0.0
    timestamp: AwareDatetime = Field(default_factory=utcnow)
    # Newest first and bounded by the agent (RUCKUS_AGENT_AVAILABLE_RESULTS).
    available_results: Annotated[list[AvailableResult], BeforeValidator(_available_results)] = (
        Field(default_factory=list)
    )


class ServedAgentStatus(AgentStatus):
    """An agent's status as the server serves it: the agent's own answer, or unavailable and why.

    `reason` is the server's: an agent's own status (the protocol's shape) never carries it.
    """

    reason: str | None = Field(
        default=None, description="Why the server sees the agent as unavailable"
    )


class AgentHealth(WireModel):
    status: str
    version: str
    agent_id: str
