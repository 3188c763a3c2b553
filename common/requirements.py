"""What an experiment needs from a machine, and whether an agent has it (used to place jobs).

`requirements(spec)` derives the needs from the typed params; `unfit_reason(agent, needs)`
answers None when the agent can run the experiment, else a reason a person can read.
Memory is estimated from the arrays a task allocates; 1 GiB = 2**30 bytes, and "GB" in
agents' reports (`total_memory_gb`, `memory_total_mb`) is read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from common.models import AgentInfo, ExperimentSpec, FrameworkName, PrecisionType, TaskType
from common.params import (
    ComputeParams,
    GpuParams,
    LlmParams,
    MemoryParams,
    TaskParams,
    params_of,
)

GIB = 2**30
MIB = 2**20
# Kept free of a job's arrays: the agent, the job's process and the rest of the machine.
MEMORY_HEADROOM = 0.10

PRECISION_BYTES: dict[PrecisionType, int] = {
    PrecisionType.FP64: 8,
    PrecisionType.FP32: 4,
    PrecisionType.TF32: 4,
    PrecisionType.FP16: 2,
    PrecisionType.BF16: 2,
    PrecisionType.INT8: 1,
    PrecisionType.FP8: 1,
}
# What compute_benchmark multiplies with NumPy; other precisions are skipped there.
CPU_MATMUL_PRECISIONS = frozenset({PrecisionType.FP64, PrecisionType.FP32, PrecisionType.FP16})
# What gpu_benchmark multiplies with torch (int8 is skipped).
GPU_MATMUL_PRECISIONS = frozenset(PRECISION_BYTES) - {PrecisionType.INT8}
CPU_DEVICES = frozenset({"cpu"})


class MemoryEstimate(BaseModel):
    """Bytes a job holds at its peak, on the host and on one GPU."""

    host_bytes: int = Field(ge=0, description="Host memory on the path the job runs")
    gpu_bytes: int = Field(default=0, ge=0, description="Memory of the one GPU the job uses")


class Requirements(BaseModel):
    """What a machine needs to run an experiment."""

    task_type: TaskType
    framework: FrameworkName
    needs_gpu: bool = Field(description="The task fails without a GPU")
    prefers_gpu: bool = Field(
        description="The task runs on a GPU when the agent has one, else on the CPU"
    )
    min_memory_gb: float = Field(ge=0, description="Host memory (GiB) when it runs on the CPU")
    min_memory_gb_on_gpu: float = Field(ge=0, description="Host memory (GiB) when it runs on a GPU")
    min_gpu_memory_gb: float = Field(ge=0, description="Memory (GiB) of the GPU it runs on")


def requirements(spec: ExperimentSpec) -> Requirements:
    """The spec's requirements; raises pydantic.ValidationError when its params are invalid."""
    params = params_of(spec)
    on_cpu = estimate(params, on_gpu=False)
    on_gpu = estimate(params, on_gpu=True)
    return Requirements(
        task_type=spec.task.type,
        framework=spec.framework.name,
        needs_gpu=isinstance(params, GpuParams),
        prefers_gpu=_prefers_gpu(spec, params),
        min_memory_gb=on_cpu.host_bytes / GIB,
        min_memory_gb_on_gpu=on_gpu.host_bytes / GIB,
        min_gpu_memory_gb=on_gpu.gpu_bytes / GIB,
    )


def _prefers_gpu(spec: ExperimentSpec, params: TaskParams) -> bool:
    if isinstance(params, GpuParams):
        return True
    if isinstance(params, ComputeParams):
        return compute_device(spec, params) not in CPU_DEVICES
    return False


def compute_device(spec: ExperimentSpec, params: ComputeParams) -> str:
    """The device compute_benchmark is asked for: `device`, else auto with pytorch, else cpu."""
    return params.device or ("auto" if spec.framework.name is FrameworkName.PYTORCH else "cpu")


def estimate(params: TaskParams, *, on_gpu: bool) -> MemoryEstimate:
    """Peak memory of a job with these params, on the CPU path or the GPU path."""
    if isinstance(params, ComputeParams):
        if on_gpu:
            return MemoryEstimate(host_bytes=0, gpu_bytes=_gpu_matmul_bytes(params))
        return MemoryEstimate(host_bytes=cpu_matmul_bytes(params))
    if isinstance(params, MemoryParams):
        return MemoryEstimate(host_bytes=memory_benchmark_bytes(params))
    if isinstance(params, GpuParams):
        copy = int(max(params.memory_sizes_mb, default=0) * MIB)
        # Copies use a source and a destination on the device and a pinned buffer on the host.
        return MemoryEstimate(host_bytes=copy, gpu_bytes=max(_gpu_matmul_bytes(params), 2 * copy))
    if isinstance(params, LlmParams):
        # One request and its answer: nothing that grows with the params.
        return MemoryEstimate(host_bytes=0)
    raise TypeError(f"no memory estimate for {type(params).__name__}")


def cpu_matmul_bytes(params: ComputeParams) -> int:
    """NumPy allocates A, B and C of every case up front; each operand is drawn in float64."""
    sizes = set(params.matrix_sizes)
    precisions = set(params.precision_types) & CPU_MATMUL_PRECISIONS
    if not precisions:
        return 0
    operands = sum(3 * n * n * PRECISION_BYTES[p] for n in sizes for p in precisions)
    return operands + 8 * max(sizes) ** 2


def _gpu_matmul_bytes(params: ComputeParams | GpuParams) -> int:
    """torch holds one case at a time: A, B and C, plus the float32 draw an operand comes from."""
    precisions = set(params.precision_types) & GPU_MATMUL_PRECISIONS
    return max(
        (_gpu_case_bytes(n, p) for n in set(params.matrix_sizes) for p in precisions), default=0
    )


def _gpu_case_bytes(n: int, precision: PrecisionType) -> int:
    # fp8 multiplies two fp8 operands into a bfloat16 result.
    result = 2 if precision is PrecisionType.FP8 else PRECISION_BYTES[precision]
    return n * n * (2 * PRECISION_BYTES[precision] + result + 4)


def memory_benchmark_bytes(params: MemoryParams) -> int:
    """Source, destination and an int64 index of the largest buffer."""
    largest = max(params.test_sizes_mb)
    count = max(1, int(largest * MIB) // 8)
    return 3 * count * 8


def usable_bytes(memory_bytes: float) -> float:
    """What a job may take of this much memory, keeping the headroom free."""
    return memory_bytes * (1 - MEMORY_HEADROOM)


def memory_shortfall(needed: int, available: int, what: str = "memory") -> str | None:
    """None when `needed` bytes fit in `available` with the headroom, else the reason."""
    if needed <= usable_bytes(available):
        return None
    return (
        f"this job needs about {_gib(needed)} of {what}; {_gib(available)} are available "
        f"and a job may use {_gib(usable_bytes(available))} of it "
        f"({MEMORY_HEADROOM:.0%} is kept free)"
    )


# Checking an agent


def unfit_reason(agent: AgentInfo, needs: Requirements) -> str | None:
    """None when the agent can run an experiment with these needs, else why not.

    What the agent does not report (old agents, other layouts) is not held against it.
    """
    name = f"agent {agent.agent_id}"
    task = str(needs.task_type)
    capability = _task_capability(agent.capabilities, task)
    if capability is False:
        return f"{name} does not offer task type {task}"
    gpus = _gpus(agent.system_info)
    if needs.needs_gpu and gpus == []:
        return f"{name} has no GPU; {task} needs one"
    if isinstance(capability, Mapping) and capability.get("available") is False:
        reason = capability.get("reason") or "the agent says it is not available"
        return f"{name} cannot run {task}: {reason}"
    accepted = _accepted_frameworks(agent.capabilities, capability)
    framework = str(needs.framework)
    # `unknown` (no framework named) runs with whatever the task runs with.
    asked = needs.framework is not FrameworkName.UNKNOWN
    if asked and accepted is not None and framework not in accepted:
        shown = ", ".join(sorted(accepted)) or "none"
        return f"{name} cannot run {task} with framework {framework} (it accepts: {shown})"
    # A task that prefers a GPU runs on one only where the agent says torch can use it.
    runs_torch = _listed(capability, "frameworks", "pytorch")
    on_gpu = needs.needs_gpu or (needs.prefers_gpu and bool(gpus) and runs_torch is not False)
    return _memory_reason(name, agent.system_info, needs, on_gpu, gpus or [])


def _memory_reason(
    name: str,
    system_info: Mapping[str, Any],
    needs: Requirements,
    on_gpu: bool,
    gpus: list[Mapping[str, Any]],
) -> str | None:
    sizes = [b for g in gpus if (b := _gpu_memory_bytes(g)) is not None]
    largest = max(sizes, default=None)
    needed = needs.min_gpu_memory_gb * GIB
    if on_gpu and largest is not None and needed > usable_bytes(largest):
        return (
            f"{name}'s largest GPU has {_gib(largest)} of memory; this experiment needs "
            f"about {_gib(needed)} on one GPU"
        )
    total = _total_memory_bytes(system_info)
    needed = (needs.min_memory_gb_on_gpu if on_gpu else needs.min_memory_gb) * GIB
    if total is not None and needed > usable_bytes(total):
        return f"{name} has {_gib(total)} of memory; this experiment needs about {_gib(needed)}"
    return None


def _task_capability(capabilities: Mapping[str, Any], task: str) -> Mapping[str, Any] | bool:
    """The agent's entry for the task; False when it lists its tasks without this one."""
    tasks = capabilities.get("tasks")
    if isinstance(tasks, Mapping):
        entry = tasks.get(task)
        return entry if isinstance(entry, Mapping) else False
    listed = capabilities.get("task_types")
    if isinstance(listed, list):
        return task in listed
    return True


def _listed(capability: Mapping[str, Any] | bool, key: str, name: str) -> bool | None:
    """Whether `name` is in the capability's list `key`; None when the agent does not say."""
    listed = capability.get(key) if isinstance(capability, Mapping) else None
    return name in listed if isinstance(listed, list) else None


def _accepted_frameworks(
    capabilities: Mapping[str, Any], capability: Mapping[str, Any] | bool
) -> set[str] | None:
    for source in (capability, capabilities):
        if isinstance(source, Mapping):
            accepted = source.get("accepted_frameworks")
            if isinstance(accepted, list):
                return {str(f) for f in accepted}
    return None


def _gpus(system_info: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The agent's GPUs; None when it does not say."""
    gpus = system_info.get("gpus")
    if not isinstance(gpus, list):
        return None
    return [g for g in gpus if isinstance(g, Mapping)]


def _gpu_memory_bytes(gpu: Mapping[str, Any]) -> float | None:
    value = _number(gpu.get("memory_total_mb"))
    return None if value is None else value * MIB


def _total_memory_bytes(system_info: Mapping[str, Any]) -> float | None:
    """`system.total_memory_gb` (the contract layout), else `memory.total_bytes` (earlier)."""
    system = system_info.get("system")
    if isinstance(system, Mapping) and (gb := _number(system.get("total_memory_gb"))) is not None:
        return gb * GIB
    memory = system_info.get("memory")
    if isinstance(memory, Mapping):
        return _number(memory.get("total_bytes"))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def fitting(agents: Iterable[AgentInfo], needs: Requirements) -> dict[str, str | None]:
    """Each agent's id with its unfit reason (None: it fits)."""
    return {a.agent_id: unfit_reason(a, needs) for a in agents}
