"""Each task type's parameters as a typed model, and the frameworks each task type runs with.

The server validates experiments with these models at the door and the agent's tasks run with
the very same ones, so an experiment that the server accepts is one the agent understands.
A task's parameters are `framework.params` overlaid by `task.params` (a task key wins).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from common.models import (
    ExperimentSpec,
    FrameworkName,
    PrecisionType,
    PromptMessage,
    TaskType,
)

MAX_RUNS = 1000
# Longest list of sizes or patterns one job sweeps: each entry is a case the job runs.
MAX_CASES = 64
# A job's longest deadline (30 days); also bounds how long a task may repeat its measurement.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_MATRIX_SIZE_CPU = 16384
MAX_MATRIX_SIZE_GPU = 32768
MAX_BUFFER_MB = 65536

Location = tuple[str | int, ...]


class TaskParams(BaseModel):
    """Base of task parameters: an unknown name is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_duration_seconds: float = Field(
        default=0.0,
        ge=0,
        le=MAX_TIMEOUT_SECONDS,
        description="Repeat the measurement until at least this long has passed",
    )
    runs: int = Field(
        default=1,
        ge=1,
        le=MAX_RUNS,
        description="Run the task this many times: the first is the cold start, the rest warm",
    )


PRECISIONS = ", ".join(p.value for p in PrecisionType)
CpuMatrixSize = Annotated[int, Field(gt=0, le=MAX_MATRIX_SIZE_CPU)]
GpuMatrixSize = Annotated[int, Field(gt=0, le=MAX_MATRIX_SIZE_GPU)]
Megabytes = Annotated[float, Field(gt=0, le=MAX_BUFFER_MB)]
CpuDevice = Literal["cpu", "auto", "gpu", "cuda", "mps"]
GpuDevice = Literal["auto", "gpu", "cuda", "mps"]
Pattern = Literal["sequential", "random"]


class ComputeParams(TaskParams):
    """compute_benchmark: n x n matmul throughput per size and precision."""

    matrix_sizes: list[CpuMatrixSize] = Field(
        default_factory=lambda: [256, 512],
        min_length=1,
        max_length=MAX_CASES,
        description=f"a list of sizes n of n x n matrices, each 1 to {MAX_MATRIX_SIZE_CPU}, "
        "e.g. [512, 1024]",
    )
    precision_types: list[PrecisionType] = Field(
        default_factory=lambda: [PrecisionType.FP32, PrecisionType.FP64],
        min_length=1,
        max_length=MAX_CASES,
        description=f"a list of precisions, e.g. [fp32, fp64]; valid: {PRECISIONS} "
        "(NumPy multiplies fp64, fp32 and fp16)",
    )
    iterations: int = Field(
        default=3, ge=1, le=10_000, description="timed multiplies per size and precision"
    )
    device: CpuDevice | None = Field(
        default=None, description="cpu runs NumPy; a GPU device runs torch when there is one"
    )
    device_index: int = Field(default=0, ge=0, le=1023, description="which GPU, when several")


class MemoryParams(TaskParams):
    """memory_benchmark: host memory bandwidth per buffer size and access pattern."""

    test_sizes_mb: list[Megabytes] = Field(
        default_factory=lambda: [16.0, 64.0],
        min_length=1,
        max_length=MAX_CASES,
        description=f"a list of buffer sizes in MB, each above 0 and at most {MAX_BUFFER_MB}, "
        "e.g. [64, 256]",
    )
    test_patterns: list[Pattern] = Field(
        default_factory=lambda: ["sequential", "random"],
        min_length=1,
        max_length=MAX_CASES,
        description="a list of access patterns: sequential, random",
    )
    iterations_per_size: int = Field(
        default=3, ge=1, le=10_000, description="timed copies per size and pattern"
    )


class GpuParams(TaskParams):
    """gpu_benchmark: device memory bandwidth and matmul throughput per precision, with torch."""

    device: GpuDevice = Field(default="auto", description="the GPU kind: auto, gpu, cuda, mps")
    device_index: int = Field(default=0, ge=0, le=1023, description="which GPU, when several")
    matrix_sizes: list[GpuMatrixSize] = Field(
        default_factory=lambda: [1024, 4096],
        min_length=1,
        max_length=MAX_CASES,
        description=f"a list of sizes n of n x n matrices, each 1 to {MAX_MATRIX_SIZE_GPU}, "
        "e.g. [2048, 8192]",
    )
    precision_types: list[PrecisionType] = Field(
        default_factory=lambda: [
            PrecisionType.FP32,
            PrecisionType.TF32,
            PrecisionType.FP16,
            PrecisionType.BF16,
            PrecisionType.FP8,
        ],
        min_length=1,
        max_length=MAX_CASES,
        description=f"a list of precisions, e.g. [fp16, bf16]; valid: {PRECISIONS}",
    )
    iterations: int = Field(default=10, ge=1, le=10_000, description="timed multiplies per case")
    warmup_iterations: int = Field(
        default=3, ge=0, le=1000, description="untimed runs before each case"
    )
    memory_sizes_mb: list[Megabytes] = Field(
        default_factory=lambda: [256.0],
        max_length=MAX_CASES,
        description="a list of copy sizes in MB (device to device, host to device and back); "
        "[] skips the copies",
    )
    memory_iterations: int = Field(default=10, ge=1, le=10_000, description="timed copies per size")


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ChatTemplate(BaseModel):
    """The prompt of llm_generation: its messages, and options sent to the endpoint as given."""

    model_config = ConfigDict(extra="forbid")

    messages: list[PromptMessage] = Field(min_length=1)
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Merged into the request body last (endpoint-specific options)"
    )


class LlmParams(TaskParams):
    """llm_generation: one chat completion against an OpenAI-compatible endpoint."""

    prompt_template: ChatTemplate = Field(
        description='{"messages": [{"role": "user", "content": "..."}], "extra_body": {...}}'
    )
    base_url: str = Field(
        pattern=r"^https?://", max_length=2048, description="e.g. http://localhost:8000/v1"
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        max_length=256,
        description="Name of the variable holding the API key",
    )
    stream: bool = Field(default=True, description="true or false: stream the answer")
    include_usage: bool = Field(
        default=True, description="Ask a stream to end with a usage report (stream_options)"
    )
    request_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)
    max_tokens: int | None = Field(default=None, gt=0, le=10_000_000)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    # Integers beyond 2**53 lose precision in many JSON clients.
    seed: int | None = Field(default=None, ge=-(2**53), le=2**53)
    stop: str | Annotated[list[str], Field(max_length=MAX_CASES)] | None = None


@dataclass(frozen=True)
class TaskKind:
    """What a task type takes and the frameworks it runs with."""

    params_model: type[TaskParams]
    # Run as asked; `fallback_frameworks` are accepted and run with the native one instead.
    frameworks: frozenset[FrameworkName]
    fallback_frameworks: frozenset[FrameworkName] = frozenset()
    # How a fallback note names what ran instead (default: the native framework names).
    runs_with: str | None = None

    @property
    def accepted_frameworks(self) -> frozenset[FrameworkName]:
        return self.frameworks | self.fallback_frameworks


TASK_KINDS: dict[TaskType, TaskKind] = {
    TaskType.COMPUTE_BENCHMARK: TaskKind(
        ComputeParams,
        frozenset({FrameworkName.NUMPY, FrameworkName.PYTORCH, FrameworkName.UNKNOWN}),
    ),
    TaskType.MEMORY_BENCHMARK: TaskKind(
        MemoryParams,
        frozenset({FrameworkName.NUMPY}),
        frozenset({FrameworkName.PYTORCH, FrameworkName.UNKNOWN}),
    ),
    TaskType.GPU_BENCHMARK: TaskKind(
        GpuParams, frozenset({FrameworkName.PYTORCH}), frozenset({FrameworkName.UNKNOWN})
    ),
    TaskType.LLM_GENERATION: TaskKind(
        LlmParams,
        frozenset({FrameworkName.OPENAI}),
        frozenset({FrameworkName.VLLM, FrameworkName.UNKNOWN}),
        runs_with="its OpenAI-compatible chat completions API",
    ),
}


def framework_names(frameworks: Iterable[FrameworkName]) -> list[str]:
    """Names a person can choose; `unknown` is what a spec without a framework says."""
    return sorted(str(f) for f in frameworks if f is not FrameworkName.UNKNOWN)


def params_of(spec: ExperimentSpec) -> TaskParams:
    """The spec's task parameters, typed; raises ValidationError located in the spec."""
    kind = TASK_KINDS[spec.task.type]
    sources = _sources(spec)
    merged: dict[str, Any] = {}
    for _, mapping in sources:
        merged |= mapping
    try:
        return kind.params_model.model_validate(merged)
    except ValidationError as exc:
        raise _located(exc, spec.task.type, kind.params_model, sources) from None


def framework_problem(spec: ExperimentSpec) -> str | None:
    """Why the spec's framework cannot run its task type, or None when it can."""
    kind = TASK_KINDS[spec.task.type]
    name = spec.framework.name
    if name in kind.accepted_frameworks:
        return None
    return (
        f"framework '{name}' cannot run task type '{spec.task.type}'; accepted: "
        f"{', '.join(framework_names(kind.accepted_frameworks))} (or no framework)"
    )


def check_spec(spec: ExperimentSpec) -> TaskParams:
    """Everything about a spec that selects behaviour, checked; raises one ValidationError."""
    errors: list[InitErrorDetails] = []
    errors += _unknown_fields(spec)
    if (problem := framework_problem(spec)) is not None:
        errors.append(_error("framework_not_accepted", problem, ("framework", "name")))
    timeout = spec.timeout_seconds
    if timeout is not None and timeout > MAX_TIMEOUT_SECONDS:
        message = f"at most {MAX_TIMEOUT_SECONDS} seconds (30 days)"
        location = ("capability_requirements", "timeout_seconds")
        errors.append(_error("less_than_equal", message, location, timeout))
    params: TaskParams | None = None
    try:
        params = params_of(spec)
    except ValidationError as exc:
        errors += _details(exc)
    if errors or params is None:
        raise ValidationError.from_exception_data("ExperimentSpec", errors)
    return params


# Sections whose names select behaviour: a name outside them is a typo, never kept silently.
_SECTIONS = ("task", "framework", "metrics", "capability_requirements")


def _unknown_fields(spec: ExperimentSpec) -> list[InitErrorDetails]:
    errors = []
    for section in _SECTIONS:
        model = getattr(spec, section)
        if isinstance(model, BaseModel):
            valid = sorted(type(model).model_fields)
            errors += [
                _unknown(name, valid, (section, name), f"in {section}")
                for name in model.model_extra or {}
            ]
    # The top level may carry a person's own notes; only a near miss of a field is refused.
    known = sorted(n for n in ExperimentSpec.model_fields if n not in ("created_at", "updated_at"))
    for name in spec.model_extra or {}:
        if difflib.get_close_matches(name, known, n=1, cutoff=0.8):
            errors.append(_unknown(name, known, (name,), "in the experiment"))
    return errors


def _sources(spec: ExperimentSpec) -> list[tuple[str, dict[str, Any]]]:
    """(location, mapping) of the params, in overlay order: framework first, task last."""
    found = []
    for where, value in (("framework", spec.framework.params), ("task", spec.task.params)):
        if value is None:
            continue
        if not isinstance(value, Mapping):
            message = f"params must be a mapping of names to values, not {type(value).__name__}"
            error = _error("dict_type", message, (where, "params"), value)
            raise ValidationError.from_exception_data("ExperimentSpec", [error])
        found.append((where, dict(value)))
    return found


def _located(
    exc: ValidationError,
    task_type: TaskType,
    model: type[TaskParams],
    sources: list[tuple[str, dict[str, Any]]],
) -> ValidationError:
    """The params' errors, each at its place in the spec, unknown names listing the valid ones."""
    valid = sorted(model.model_fields)
    errors = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        name = loc[0] if loc else None
        # A name given in both places is the task's (it wins); a missing one belongs there too.
        where = next((w for w, m in reversed(sources) if name in m), "task")
        location: Location = (where, "params", *loc)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            errors.append(_unknown(str(name), valid, location, f"for task type '{task_type}'"))
        elif err["type"] == "extra_forbidden" and (inner := _model_at(model, loc[:-1])):
            where_in = f"in {'.'.join(str(p) for p in loc[:-1])}"
            errors.append(_unknown(str(loc[-1]), sorted(inner.model_fields), location, where_in))
        else:
            message = err["msg"]
            field = model.model_fields.get(str(name))
            if field is not None and field.description and _is_type_error(err["type"]):
                # Type errors do not say what is valid: the field's description does.
                message = f"{message}; {name} is {field.description}"
            errors.append(_error(err["type"], message, location, err.get("input")))
    return ValidationError.from_exception_data("ExperimentSpec", errors)


def _is_type_error(kind: str) -> bool:
    return kind.endswith(("_type", "_parsing")) or kind in ("missing", "model_type")


def _model_at(model: type[BaseModel], path: Location) -> type[BaseModel] | None:
    """The model that validates the value at `path` inside `model` (None past what is known)."""
    current: Any = model
    for step in path:
        if isinstance(step, int):
            continue  # an item of a list: the list's model is already current
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(step)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The model in `X`, `X | None` or `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _inner_model(arg)) is not None:
            return found
    return None


def _unknown(name: str, valid: list[str], location: Location, where: str) -> InitErrorDetails:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    message = f"unknown name '{name}' {where}; {hint}valid names: {', '.join(valid)}"
    # The value is not echoed: an unknown name may hold anything, a credential included.
    return _error("unknown_name", message, location, None)


def _error(kind: str, message: str, location: Location, value: Any = None) -> InitErrorDetails:
    return {"type": PydanticCustomError(kind, message), "loc": location, "input": value}


def _details(exc: ValidationError) -> list[InitErrorDetails]:
    return [
        _error(e["type"], e["msg"], tuple(e["loc"]), e.get("input"))
        for e in exc.errors(include_url=False)
    ]
