"""The agent protocol as existing Ruckus servers and the web UI read it, written from the contract
(shared/DESIGN.md, "The agent protocol") and the existing agents' shapes, not from our models.

Closed objects forbid extra keys, so an answer in another layout fails to parse; datetimes must
carry a time zone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

JobStatusName = Literal[
    "queued", "assigned", "running", "completed", "failed", "cancelled", "timeout"
]
Precision = Literal["fp64", "fp32", "tf32", "fp16", "bf16", "int8", "fp8"]
NonNegative = Annotated[float, Field(ge=0)]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(Closed):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    agent_id: str


class SystemPart(Closed):
    hostname: str
    os: Literal["Linux", "Windows", "Darwin", "Unknown"]
    os_version: str
    kernel: str
    python_version: str
    total_memory_gb: NonNegative
    available_memory_gb: NonNegative
    disk_total_gb: NonNegative
    disk_available_gb: NonNegative


class CpuPart(Closed):
    model: str
    cores_physical: int = Field(ge=0)
    cores_logical: int = Field(ge=0)
    # Existing agents send 0 when the machine does not tell; ours sends null then.
    frequency_mhz: NonNegative | None
    architecture: Literal["x86_64", "amd64", "arm64", "aarch64", "arm", "i386", "unknown"]


class GpuPart(Closed):
    index: int = Field(ge=0)
    name: str
    uuid: str | None = None
    vendor: Literal["nvidia", "amd", "intel", "apple", "unknown"] = "unknown"
    memory_total_mb: int | None = Field(default=None, ge=0)
    memory_available_mb: int | None = Field(default=None, ge=0)
    memory_used_mb: int | None = Field(default=None, ge=0)
    compute_capability: str | None = None
    tensor_cores: list[str] = Field(default_factory=list)
    supported_precisions: list[Precision] = Field(default_factory=list)
    current_utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    temperature_celsius: float | None = None
    power_usage_watts: float | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    multiprocessor_count: int | None = None
    detection_method: Literal[
        "pynvml", "nvidia_smi", "pytorch_cuda", "pytorch_mps", "pytorch_rocm", "unknown"
    ] = "unknown"


class FrameworkCapabilities(Closed):
    text_generation: bool = False
    tokenization: bool = False
    streaming: bool = False
    continuous_batching: bool = False
    cuda: bool = False
    mps: bool = False


class FrameworkPart(Closed):
    name: str
    version: str
    available: bool
    capabilities: FrameworkCapabilities = Field(default_factory=FrameworkCapabilities)


class SystemInfo(Open):
    """Open: the contract lets an agent put more under new keys."""

    system: SystemPart
    cpu: CpuPart
    gpus: list[GpuPart]
    frameworks: list[FrameworkPart]
    models: list[dict[str, Any]]
    hooks: list[dict[str, Any]]
    metrics: list[dict[str, Any]]


class AgentInfo(Closed):
    agent_id: str
    agent_name: str | None = None
    agent_type: Literal["white_box", "gray_box", "black_box"]
    system_info: SystemInfo
    capabilities: dict[str, Any]
    last_updated: AwareDatetime
    # Ours, past the contract: existing servers ignore a field they do not know.
    labels: dict[str, str]


class AgentInfoResponse(Closed):
    agent_info: AgentInfo


class AvailableResult(Closed):
    job_id: str
    completed_at: AwareDatetime
    result_type: Literal["success", "partial", "constraint", "execution", "cancelled"]


class AgentStatus(Closed):
    agent_id: str
    status: Literal["active", "idle", "error", "unavailable"]
    running_jobs: list[str]
    queued_jobs: list[str]
    current_job_id: str | None
    current_experiment_id: str | None
    uptime_seconds: NonNegative
    timestamp: AwareDatetime
    available_results: list[AvailableResult]


class JobStatus(Closed):
    """The union of the contract's `{status, timestamp, message}` and what existing agents send
    (`{job_id, status, message, started_at | completed_at}`)."""

    job_id: str | None = None
    status: JobStatusName
    message: str
    timestamp: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    # Ours, optional (servers that do not know them ignore them): what the task does now, how
    # much of it is done, why an ended job failed, and which run of the job on this agent it is.
    stage: str | None = Field(default=None, max_length=500)
    progress: float | None = Field(default=None, ge=0, le=1)
    error_type: str | None = None
    attempt: int | None = Field(default=None, ge=1)


class JobLog(Closed):
    """GET /api/v1/jobs/{job_id}/logs?offset=N: offsets in bytes of UTF-8."""

    job_id: str
    offset: int = Field(ge=0)
    next_offset: int = Field(ge=0)
    text: str
    complete: bool


class JobResult(Closed):
    job_id: str
    experiment_id: str
    status: JobStatusName
    started_at: AwareDatetime
    completed_at: AwareDatetime
    duration_seconds: NonNegative
    output: Any = None
    metrics: dict[str, Any]
    model_actual: str | None = None
    framework_version: str | None = None
    hardware_info: dict[str, Any]
    artifacts: list[str]
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None


class ExistingServerAgentStatus(BaseModel):
    """How an existing Ruckus server reads an agent's status (its pydantic model, not strict):
    every entry of `available_results` must be an object."""

    agent_id: str
    status: Literal["active", "idle", "error", "unavailable"]
    running_jobs: list[str] = Field(default_factory=list)
    queued_jobs: list[str] = Field(default_factory=list)
    current_job_id: str | None = None
    current_experiment_id: str | None = None
    uptime_seconds: float
    timestamp: AwareDatetime
    available_results: list[dict[str, Any]] = Field(default_factory=list)
