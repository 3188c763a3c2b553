"""Each task type's params checked by the model the server and the agent share."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common.models import ExperimentSpec, TaskType
from common.params import (
    TASK_KINDS,
    ComputeParams,
    GpuParams,
    LlmParams,
    MemoryParams,
    check_spec,
    params_of,
)

LLM_OK = {
    "base_url": "http://127.0.0.1:8000/v1",
    "prompt_template": {"messages": [{"role": "user", "content": "hi"}]},
}
RIGHT: dict[TaskType, dict[str, Any]] = {
    TaskType.COMPUTE_BENCHMARK: {"matrix_sizes": [64, 128], "precision_types": ["fp32", "bf16"]},
    TaskType.MEMORY_BENCHMARK: {"test_sizes_mb": [1, 4.5], "test_patterns": ["random"]},
    TaskType.GPU_BENCHMARK: {"device": "cuda", "matrix_sizes": [1024], "memory_sizes_mb": []},
    TaskType.LLM_GENERATION: LLM_OK | {"max_tokens": 16, "stop": ["\n"], "runs": 3},
}
FRAMEWORK = {
    TaskType.COMPUTE_BENCHMARK: "numpy",
    TaskType.MEMORY_BENCHMARK: "numpy",
    TaskType.GPU_BENCHMARK: "pytorch",
    TaskType.LLM_GENERATION: "openai",
}


def spec(
    task_type: TaskType,
    params: Any = None,
    *,
    framework: str | None = None,
    framework_params: Any = None,
    **extra: Any,
) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "name": "n",
            "model": "m",
            "task": {"name": "t", "type": task_type, "params": params},
            "framework": {"name": framework or FRAMEWORK[task_type], "params": framework_params},
            **extra,
        }
    )


def errors(experiment: ExperimentSpec) -> dict[str, str]:
    """Location (dotted) -> message of each problem check_spec finds."""
    with pytest.raises(ValidationError) as caught:
        check_spec(experiment)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize("task_type", list(TaskType))
def test_right_params_of_each_task_type_pass_and_come_back_typed(task_type: TaskType) -> None:
    params = check_spec(spec(task_type, RIGHT[task_type]))
    assert type(params) is TASK_KINDS[task_type].params_model


def test_every_task_type_has_a_kind() -> None:
    assert set(TASK_KINDS) == set(TaskType)
    models = {ComputeParams, MemoryParams, GpuParams, LlmParams}
    assert {k.params_model for k in TASK_KINDS.values()} == models


WRONG = [
    (TaskType.COMPUTE_BENCHMARK, {"matrix_sizes": "big"}, "task.params.matrix_sizes", "list"),
    (
        TaskType.COMPUTE_BENCHMARK,
        {"precision_types": ["fp99"]},
        "task.params.precision_types.0",
        "'fp64', 'fp32', 'tf32', 'fp16', 'bf16', 'int8' or 'fp8'",
    ),
    (TaskType.COMPUTE_BENCHMARK, {"matrix_sizes": [-5]}, "task.params.matrix_sizes.0", "> 0"),
    (TaskType.COMPUTE_BENCHMARK, {"matrix_sizes": []}, "task.params.matrix_sizes", "at least 1"),
    (
        TaskType.COMPUTE_BENCHMARK,
        {"matrix_sizes": [16385]},
        "task.params.matrix_sizes.0",
        "less than or equal to 16384",
    ),
    (
        TaskType.COMPUTE_BENCHMARK,
        {"device": "tpu"},
        "task.params.device",
        "'cpu', 'auto', 'gpu', 'cuda' or 'mps'",
    ),
    (TaskType.MEMORY_BENCHMARK, {"test_sizes_mb": [0]}, "task.params.test_sizes_mb.0", "> 0"),
    (
        TaskType.MEMORY_BENCHMARK,
        {"test_patterns": ["zigzag"]},
        "task.params.test_patterns.0",
        "'sequential' or 'random'",
    ),
    (TaskType.MEMORY_BENCHMARK, {"runs": 0}, "task.params.runs", "greater than or equal to 1"),
    (
        TaskType.MEMORY_BENCHMARK,
        {"min_duration_seconds": float("inf")},
        "task.params.min_duration_seconds",
        "finite",
    ),
    (TaskType.GPU_BENCHMARK, {"device": "cpu"}, "task.params.device", "'auto', 'gpu', 'cuda'"),
    (
        TaskType.GPU_BENCHMARK,
        {"precision_types": "fp16"},
        "task.params.precision_types",
        "valid list",
    ),
    (TaskType.GPU_BENCHMARK, {"iterations": 2.5}, "task.params.iterations", "integer"),
    (TaskType.LLM_GENERATION, {}, "task.params.prompt_template", "Field required"),
    (
        TaskType.LLM_GENERATION,
        LLM_OK | {"base_url": "ftp://x"},
        "task.params.base_url",
        "should match pattern",
    ),
    (
        TaskType.LLM_GENERATION,
        LLM_OK | {"prompt_template": {"messages": []}},
        "task.params.prompt_template.messages",
        "at least 1",
    ),
    (
        TaskType.LLM_GENERATION,
        LLM_OK | {"prompt_template": {"messages": [{"role": "robot", "content": "x"}]}},
        "task.params.prompt_template.messages.0.role",
        "'system', 'user' or 'assistant'",
    ),
    (
        TaskType.LLM_GENERATION,
        LLM_OK | {"api_key_env": "not a name"},
        "task.params.api_key_env",
        "should match pattern",
    ),
    (TaskType.LLM_GENERATION, LLM_OK | {"top_p": 2}, "task.params.top_p", "less than or equal"),
]


@pytest.mark.parametrize(("task_type", "params", "where", "says"), WRONG)
def test_wrong_params_are_refused_at_their_place_saying_what_is_valid(
    task_type: TaskType, params: dict[str, Any], where: str, says: str
) -> None:
    found = errors(spec(task_type, params))
    assert where in found, found
    shown = found[where].replace("greater than 0", "> 0")
    assert says in shown, found[where]


@pytest.mark.parametrize("task_type", list(TaskType))
def test_a_misspelt_param_is_refused_naming_the_valid_ones(task_type: TaskType) -> None:
    params = RIGHT[task_type] | {"matrix_sizs": [1]}
    found = errors(spec(task_type, params))
    message = found["task.params.matrix_sizs"]
    valid = sorted(TASK_KINDS[task_type].params_model.model_fields)
    assert f"valid names: {', '.join(valid)}" in message
    if task_type in (TaskType.COMPUTE_BENCHMARK, TaskType.GPU_BENCHMARK):
        assert "did you mean 'matrix_sizes'?" in message


def test_an_unknown_param_value_is_not_echoed() -> None:
    experiment = spec(TaskType.LLM_GENERATION, LLM_OK | {"api_key": "sk-secret-value"})
    with pytest.raises(ValidationError) as caught:
        check_spec(experiment)
    (error,) = caught.value.errors()
    assert error["loc"] == ("task", "params", "api_key")
    assert "did you mean 'api_key_env'?" in error["msg"]
    assert "sk-secret-value" not in str(caught.value.errors())


def test_framework_params_are_checked_where_they_are_given() -> None:
    experiment = spec(
        TaskType.COMPUTE_BENCHMARK,
        {"matrix_sizes": [64]},
        framework_params={"device": "tpu", "iteratons": 3, "matrix_sizes": "ignored: task wins"},
    )
    found = errors(experiment)
    assert set(found) == {"framework.params.device", "framework.params.iteratons"}
    assert "did you mean 'iterations'?" in found["framework.params.iteratons"]


def test_task_params_win_over_framework_params() -> None:
    experiment = spec(
        TaskType.COMPUTE_BENCHMARK,
        {"matrix_sizes": [64]},
        framework_params={"matrix_sizes": [128], "device": "cpu"},
    )
    params = params_of(experiment)
    assert isinstance(params, ComputeParams)
    assert params.matrix_sizes == [64] and params.device == "cpu"


def test_params_that_are_not_a_mapping_are_refused() -> None:
    found = errors(spec(TaskType.COMPUTE_BENCHMARK, [1, 2]))
    assert "mapping" in found["task.params"]


def test_a_framework_the_task_cannot_run_lists_the_accepted_ones() -> None:
    found = errors(spec(TaskType.COMPUTE_BENCHMARK, framework="vllm"))
    assert found["framework.name"] == (
        "framework 'vllm' cannot run task type 'compute_benchmark'; accepted: numpy, pytorch "
        "(or no framework)"
    )
    found = errors(spec(TaskType.GPU_BENCHMARK, framework="numpy"))
    assert "accepted: pytorch" in found["framework.name"]
    check_spec(spec(TaskType.GPU_BENCHMARK, framework="unknown"))  # no framework named


def test_misspelt_section_names_are_refused_and_notes_are_kept() -> None:
    raw = {
        "name": "n",
        "model": "m",
        "task": {"name": "t", "type": "compute_benchmark", "parms": {"matrix_sizes": [1]}},
        "framework": {"name": "numpy", "parameters": {}},
        "metrics": {"metric": {}},
        "capability_requirements": {"timeout": 5},
        "framwork": {"name": "numpy"},
        "owner": "the benchmarking team",
    }
    found = errors(ExperimentSpec.model_validate(raw))
    assert set(found) == {
        "task.parms",
        "framework.parameters",
        "metrics.metric",
        "capability_requirements.timeout",
        "framwork",
    }
    assert "did you mean 'params'?" in found["task.parms"]
    assert "valid names: description, name, params, type" in found["task.parms"]
    assert "did you mean 'framework'?" in found["framwork"]
    del raw["framwork"], raw["task"]["parms"], raw["framework"]["parameters"]
    del raw["metrics"]["metric"], raw["capability_requirements"]["timeout"]
    check_spec(ExperimentSpec.model_validate(raw))  # a person's own note stays allowed


def test_a_deadline_past_thirty_days_is_refused() -> None:
    experiment = spec(
        TaskType.COMPUTE_BENCHMARK, capability_requirements={"timeout_seconds": 10**20}
    )
    found = errors(experiment)
    assert "30 days" in found["capability_requirements.timeout_seconds"]


def test_all_problems_are_reported_at_once() -> None:
    experiment = spec(
        TaskType.MEMORY_BENCHMARK,
        {"test_sizes_mb": [-1], "pattern": "random"},
        framework="vllm",
    )
    assert set(errors(experiment)) == {
        "framework.name",
        "task.params.test_sizes_mb.0",
        "task.params.pattern",
    }
