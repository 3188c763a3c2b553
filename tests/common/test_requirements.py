"""An experiment's requirements, and agents judged against them with a reason a person reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.app import _capabilities
from agent.system_info import system_info
from agent.tasks.compute_benchmark import NUMPY_DTYPES
from common.models import AgentInfo, FrameworkName, TaskType
from common.params import ComputeParams
from common.requirements import (
    CPU_MATMUL_PRECISIONS,
    GIB,
    Requirements,
    estimate,
    fitting,
    requirements,
    unfit_reason,
)
from tests.common.test_params import LLM_OK, spec

# The job of issue 16: every matrix of four sizes in two precisions, allocated up front.
HUGE_COMPUTE = {"matrix_sizes": [16384, 16383, 16382, 16381], "precision_types": ["fp64", "fp32"]}


def capabilities(**tasks: dict[str, Any]) -> dict[str, Any]:
    """Capabilities as an agent reports them, with every task available unless overridden."""
    entries = {
        "compute_benchmark": {"available": True, "accepted_frameworks": ["numpy", "pytorch"]},
        "memory_benchmark": {"available": True, "accepted_frameworks": ["numpy", "pytorch"]},
        "gpu_benchmark": {"available": True, "accepted_frameworks": ["pytorch"]},
        "llm_generation": {"available": True, "accepted_frameworks": ["openai", "vllm"]},
    }
    return {"tasks": entries | tasks}


def agent(
    agent_id: str = "a1",
    *,
    memory_gb: float | None = 64.0,
    gpus: list[dict[str, Any]] | None = None,
    caps: dict[str, Any] | None = None,
    layout: str = "contract",
) -> AgentInfo:
    info: dict[str, Any] = {"gpus": gpus if gpus is not None else []}
    if memory_gb is not None:
        if layout == "contract":
            info["system"] = {"total_memory_gb": memory_gb, "hostname": "h"}
        else:
            info["memory"] = {"total_bytes": int(memory_gb * GIB), "available_bytes": 1}
    return AgentInfo(
        agent_id=agent_id,
        system_info=info,
        capabilities=capabilities() if caps is None else caps,
    )


H100 = {"index": 0, "name": "NVIDIA H100", "memory_total_mb": 81559}
SMALL_GPU = {"index": 0, "name": "NVIDIA T400", "memory_total_mb": 2048}


# Requirements


def test_the_compute_job_of_the_issue_needs_about_38_gib_on_the_cpu() -> None:
    needs = requirements(spec(TaskType.COMPUTE_BENCHMARK, HUGE_COMPUTE))
    # 3 matrices x (8 + 4) bytes x n^2 for each n, plus the float64 draw of the largest.
    expected = sum(36 * n * n for n in HUGE_COMPUTE["matrix_sizes"]) + 8 * 16384**2
    assert needs.min_memory_gb == pytest.approx(expected / GIB)
    assert 37 < needs.min_memory_gb < 39
    assert needs.task_type is TaskType.COMPUTE_BENCHMARK
    assert needs.framework is FrameworkName.NUMPY
    assert not needs.needs_gpu and not needs.prefers_gpu


def test_compute_with_pytorch_prefers_a_gpu_and_holds_one_case_there() -> None:
    params = {"matrix_sizes": [1024, 4096], "precision_types": ["fp16", "fp64"]}
    needs = requirements(spec(TaskType.COMPUTE_BENCHMARK, params, framework="pytorch"))
    assert needs.prefers_gpu and not needs.needs_gpu
    # One case at a time: A, B, C in fp64 plus the float32 draw, for the largest size.
    assert needs.min_gpu_memory_gb == pytest.approx(4096**2 * (3 * 8 + 4) / GIB)
    assert needs.min_memory_gb_on_gpu == 0
    cpu = {"matrix_sizes": [512], "precision_types": ["fp32"], "device": "cpu"}
    assert not requirements(spec(TaskType.COMPUTE_BENCHMARK, cpu, framework="pytorch")).prefers_gpu


def test_compute_counts_only_what_numpy_multiplies() -> None:
    assert set(NUMPY_DTYPES) == CPU_MATMUL_PRECISIONS
    only_gpu_types = {"matrix_sizes": [1024], "precision_types": ["bf16", "fp8", "int8"]}
    assert requirements(spec(TaskType.COMPUTE_BENCHMARK, only_gpu_types)).min_memory_gb == 0
    fp32 = {"matrix_sizes": [512, 512], "precision_types": ["fp32", "fp32"]}
    params = spec(TaskType.COMPUTE_BENCHMARK, fp32)
    assert requirements(params).min_memory_gb * GIB == 3 * 512**2 * 4 + 8 * 512**2


def test_memory_benchmark_needs_three_buffers_of_its_largest_size() -> None:
    params = {"test_sizes_mb": [64, 1024, 256]}
    needs = requirements(spec(TaskType.MEMORY_BENCHMARK, params))
    assert needs.min_memory_gb == pytest.approx(3.0)
    assert not needs.needs_gpu and not needs.prefers_gpu


def test_gpu_benchmark_needs_a_gpu_and_pins_its_copy_buffer_on_the_host() -> None:
    params = {"matrix_sizes": [8192], "precision_types": ["fp32"], "memory_sizes_mb": [4096]}
    needs = requirements(spec(TaskType.GPU_BENCHMARK, params))
    assert needs.needs_gpu
    assert needs.min_memory_gb_on_gpu == pytest.approx(4.0)
    # Copies need source and destination on the device: 8 GiB, more than the 1 GiB matmul.
    assert needs.min_gpu_memory_gb == pytest.approx(8.0)


def test_llm_generation_needs_no_gpu_and_no_memory_of_note() -> None:
    needs = requirements(spec(TaskType.LLM_GENERATION, LLM_OK | {"max_tokens": 100_000}))
    assert needs.min_memory_gb == 0 and not needs.needs_gpu
    assert needs.framework is FrameworkName.OPENAI


def test_requirements_of_invalid_params_raise_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        requirements(spec(TaskType.COMPUTE_BENCHMARK, {"matrix_sizes": "big"}))
    assert caught.value.errors()[0]["loc"] == ("task", "params", "matrix_sizes")


def test_estimate_of_a_cpu_job_has_no_gpu_part() -> None:
    on_cpu = estimate(ComputeParams(matrix_sizes=[256]), on_gpu=False)
    assert on_cpu.gpu_bytes == 0 and on_cpu.host_bytes > 0


# Agents against requirements


def test_an_agent_without_a_gpu_cannot_run_a_gpu_benchmark() -> None:
    needs = requirements(spec(TaskType.GPU_BENCHMARK))
    assert (
        unfit_reason(agent("cpu-box"), needs) == "agent cpu-box has no GPU; gpu_benchmark needs one"
    )
    assert unfit_reason(agent("gpu-box", gpus=[H100]), needs) is None


def test_an_agent_with_too_little_memory_is_told_how_much_is_needed() -> None:
    needs = requirements(spec(TaskType.COMPUTE_BENCHMARK, HUGE_COMPUTE))
    reason = unfit_reason(agent("small", memory_gb=8.0), needs)
    assert reason == "agent small has 8.0 GiB of memory; this experiment needs about 38.0 GiB"
    assert unfit_reason(agent("big", memory_gb=64.0), needs) is None


def test_memory_is_read_from_the_earlier_layout_too() -> None:
    needs = requirements(spec(TaskType.COMPUTE_BENCHMARK, HUGE_COMPUTE))
    reason = unfit_reason(agent("old", memory_gb=23.0, layout="earlier"), needs)
    assert reason == "agent old has 23.0 GiB of memory; this experiment needs about 38.0 GiB"


def test_the_headroom_counts_against_a_close_fit() -> None:
    needs = Requirements(
        task_type=TaskType.MEMORY_BENCHMARK,
        framework=FrameworkName.NUMPY,
        needs_gpu=False,
        prefers_gpu=False,
        min_memory_gb=7.5,
        min_memory_gb_on_gpu=7.5,
        min_gpu_memory_gb=0,
    )
    assert unfit_reason(agent(memory_gb=8.0), needs) is not None  # 10% of 8 GiB is kept free
    assert unfit_reason(agent(memory_gb=8.4), needs) is None


def test_a_task_the_agent_cannot_run_now_gives_the_agents_reason() -> None:
    needs = requirements(spec(TaskType.LLM_GENERATION, LLM_OK))
    caps = capabilities(llm_generation={"available": False, "reason": "no network here"})
    reason = unfit_reason(agent("offline", caps=caps), needs)
    assert reason == "agent offline cannot run llm_generation: no network here"


def test_a_task_the_agent_does_not_offer_is_named() -> None:
    needs = requirements(spec(TaskType.MEMORY_BENCHMARK))
    caps = {"tasks": {"compute_benchmark": {"available": True}}}
    assert unfit_reason(agent("old-agent", caps=caps), needs) == (
        "agent old-agent does not offer task type memory_benchmark"
    )
    assert unfit_reason(agent("lister", caps={"task_types": ["memory_benchmark"]}), needs) is None
    assert unfit_reason(agent("other", caps={"task_types": ["llm_generation"]}), needs) == (
        "agent other does not offer task type memory_benchmark"
    )


def test_a_framework_the_agent_does_not_accept_is_named_with_those_it_does() -> None:
    needs = requirements(spec(TaskType.LLM_GENERATION, LLM_OK, framework="vllm"))
    caps = capabilities(llm_generation={"available": True, "accepted_frameworks": ["openai"]})
    assert unfit_reason(agent("strict", caps=caps), needs) == (
        "agent strict cannot run llm_generation with framework vllm (it accepts: openai)"
    )
    unnamed = requirements(spec(TaskType.LLM_GENERATION, LLM_OK, framework="unknown"))
    assert unfit_reason(agent("strict", caps=caps), unnamed) is None


def test_a_gpu_too_small_for_the_largest_case_is_named() -> None:
    params = {"matrix_sizes": [32768], "precision_types": ["fp32"], "memory_sizes_mb": []}
    needs = requirements(spec(TaskType.GPU_BENCHMARK, params))
    reason = unfit_reason(agent("t400", gpus=[SMALL_GPU]), needs)
    assert reason == (
        "agent t400's largest GPU has 2.0 GiB of memory; this experiment needs about "
        "16.0 GiB on one GPU"
    )
    assert unfit_reason(agent("h100", gpus=[SMALL_GPU, H100]), needs) is None


def test_a_compute_job_that_prefers_a_gpu_is_judged_on_the_path_it_will_take() -> None:
    params = {"matrix_sizes": [16384], "precision_types": ["fp64"], "device": "auto"}
    needs = requirements(spec(TaskType.COMPUTE_BENCHMARK, params))
    # With a GPU it runs there (host memory does not matter); without, NumPy on the host.
    assert unfit_reason(agent("gpu", memory_gb=4.0, gpus=[H100]), needs) is None
    reason = unfit_reason(agent("cpu", memory_gb=4.0), needs)
    assert reason is not None and reason.startswith("agent cpu has 4.0 GiB of memory")
    # A GPU that torch cannot use (the agent runs compute_benchmark with numpy only).
    numpy_only = capabilities(
        compute_benchmark={
            "available": True,
            "frameworks": ["numpy"],
            "accepted_frameworks": ["numpy", "pytorch"],
        }
    )
    no_torch = agent("no-torch", memory_gb=4.0, gpus=[H100], caps=numpy_only)
    reason = unfit_reason(no_torch, needs)
    assert reason is not None and reason.startswith("agent no-torch has 4.0 GiB of memory")


def test_what_an_agent_does_not_report_is_not_held_against_it() -> None:
    bare = AgentInfo(agent_id="bare")
    for task_type, params in [
        (TaskType.COMPUTE_BENCHMARK, HUGE_COMPUTE),
        (TaskType.GPU_BENCHMARK, None),
        (TaskType.LLM_GENERATION, LLM_OK),
    ]:
        assert unfit_reason(bare, requirements(spec(task_type, params))) is None


def test_fitting_gives_each_agents_reason() -> None:
    needs = requirements(spec(TaskType.GPU_BENCHMARK))
    agents = [agent("cpu-1"), agent("gpu-1", gpus=[H100]), agent("cpu-2")]
    assert fitting(agents, needs) == {
        "cpu-1": "agent cpu-1 has no GPU; gpu_benchmark needs one",
        "gpu-1": None,
        "cpu-2": "agent cpu-2 has no GPU; gpu_benchmark needs one",
    }


def test_this_machines_own_agent_info_is_judged() -> None:
    """The info a real agent reports (its capabilities and system_info) is understood."""
    facts, caps = system_info().model_dump(mode="json"), _capabilities()
    here = AgentInfo(agent_id="here", system_info=facts, capabilities=caps)
    small = requirements(spec(TaskType.COMPUTE_BENCHMARK, {"matrix_sizes": [64]}))
    assert unfit_reason(here, small) is None

    total_gib = facts["system"]["total_memory_gb"]
    too_big = small.model_copy(update={"min_memory_gb": 2 * total_gib})
    reason = unfit_reason(here, too_big)
    assert reason == (
        f"agent here has {total_gib:.1f} GiB of memory; this experiment needs about "
        f"{2 * total_gib:.1f} GiB"
    )

    gpu = caps["tasks"]["gpu_benchmark"]
    expected = (
        "agent here has no GPU; gpu_benchmark needs one"
        if not facts["gpus"]
        else None
        if gpu["available"]
        else f"agent here cannot run gpu_benchmark: {gpu['reason']}"
    )
    assert unfit_reason(here, requirements(spec(TaskType.GPU_BENCHMARK))) == expected
