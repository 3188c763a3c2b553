"""POST /api/v1/experiments/ takes only experiments a job can run as written: 422 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from common.limits import MAX_DEPTH, MAX_EXPERIMENT_BYTES
from common.models import ExperimentSpec, JobStatusEnum, TaskSpec, TaskType
from common.storage import StorageBackend
from tests.api.conftest import create_job, register, unique, wait_job
from tests.support.stack import FakeAgent

EXAMPLES = {
    path.name: yaml.safe_load(path.read_text())
    for path in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
}
LLM = {
    "base_url": "http://127.0.0.1:11434/v1",
    "prompt_template": {"messages": [{"role": "user", "content": "Say hi."}]},
}
RIGHT: dict[str, tuple[str, dict[str, Any]]] = {
    "compute_benchmark": ("numpy", {"matrix_sizes": [64], "precision_types": ["fp32", "fp64"]}),
    "memory_benchmark": ("numpy", {"test_sizes_mb": [4], "test_patterns": ["sequential"]}),
    "gpu_benchmark": ("pytorch", {"matrix_sizes": [1024], "precision_types": ["fp16", "bf16"]}),
    "llm_generation": ("openai", LLM | {"max_tokens": 32, "stream": False}),
}


def body(task_type: str, params: Any = None, **spec: Any) -> dict[str, Any]:
    framework, right = RIGHT[task_type]
    document = {
        "id": unique("exp"),
        "name": f"{task_type} check",
        "model": "none",
        "task": {"name": "t", "type": task_type, "params": right if params is None else params},
        "framework": {"name": framework},
    }
    return {"experiment_spec": document | spec}


async def refused(http: httpx.AsyncClient, sent: dict[str, Any]) -> dict[str, str]:
    """The 422's problems as dotted location -> message; checks that nothing was stored."""
    response = await http.post("/api/v1/experiments/", json=sent)
    assert response.status_code == 422, response.text
    experiment_id = sent["experiment_spec"].get("id")
    if experiment_id:
        assert (await http.get(f"/api/v1/experiments/{experiment_id}")).status_code == 404
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in response.json()["detail"]}


@pytest.mark.parametrize("task_type", list(RIGHT))
async def test_right_params_of_each_task_type_are_accepted_and_kept_as_written(
    http: httpx.AsyncClient, task_type: str
) -> None:
    sent = body(task_type)
    response = await http.post("/api/v1/experiments/", json=sent)
    assert response.status_code == 200, response.text
    experiment_id = response.json()["experiment_id"]
    stored = (await http.get(f"/api/v1/experiments/{experiment_id}")).json()["experiment"]
    assert stored["task"]["params"] == RIGHT[task_type][1]


WRONG = [
    (
        "compute_benchmark",
        {"matrix_sizes": "big"},
        "body.experiment_spec.task.params.matrix_sizes",
        "Input should be a valid list; matrix_sizes is a list of sizes n of n x n matrices, "
        "each 1 to 16384, e.g. [512, 1024]",
    ),
    (
        "compute_benchmark",
        {"precision_types": ["fp99"]},
        "body.experiment_spec.task.params.precision_types.0",
        "'fp64', 'fp32', 'tf32', 'fp16', 'bf16', 'int8' or 'fp8'",
    ),
    (
        "compute_benchmark",
        {"matrix_sizes": [-512]},
        "body.experiment_spec.task.params.matrix_sizes.0",
        "greater than 0",
    ),
    (
        "compute_benchmark",
        {"matrix_sizs": [512]},
        "body.experiment_spec.task.params.matrix_sizs",
        "did you mean 'matrix_sizes'? valid names: device, device_index, iterations, "
        "matrix_sizes, min_duration_seconds, precision_types, runs",
    ),
    (
        "memory_benchmark",
        {"test_sizes_mb": []},
        "body.experiment_spec.task.params.test_sizes_mb",
        "at least 1 item",
    ),
    (
        "memory_benchmark",
        {"test_patterns": ["strided"]},
        "body.experiment_spec.task.params.test_patterns.0",
        "'sequential' or 'random'",
    ),
    (
        "memory_benchmark",
        {"iterations": 5},
        "body.experiment_spec.task.params.iterations",
        "did you mean 'iterations_per_size'?",
    ),
    (
        "gpu_benchmark",
        {"device": "cpu"},
        "body.experiment_spec.task.params.device",
        "'auto', 'gpu', 'cuda' or 'mps'",
    ),
    (
        "gpu_benchmark",
        {"precision_types": ["fp16", "fp4"]},
        "body.experiment_spec.task.params.precision_types.1",
        "'fp64', 'fp32'",
    ),
    (
        "gpu_benchmark",
        {"matrix_sizes": [65536]},
        "body.experiment_spec.task.params.matrix_sizes.0",
        "less than or equal to 32768",
    ),
    (
        "llm_generation",
        {"base_url": "http://x/v1"},
        "body.experiment_spec.task.params.prompt_template",
        "Field required",
    ),
    (
        "llm_generation",
        LLM | {"max_tokens": "lots"},
        "body.experiment_spec.task.params.max_tokens",
        "valid integer",
    ),
    (
        "llm_generation",
        LLM | {"prompt_template": {"mesages": []}},
        "body.experiment_spec.task.params.prompt_template.mesages",
        "unknown name 'mesages' in prompt_template; did you mean 'messages'? valid names: "
        "extra_body, messages",
    ),
    (
        "llm_generation",
        LLM | {"temprature": 0},
        "body.experiment_spec.task.params.temprature",
        "did you mean 'temperature'?",
    ),
]


@pytest.mark.parametrize(("task_type", "params", "where", "says"), WRONG)
async def test_wrong_params_are_422_naming_the_field_and_what_is_valid(
    http: httpx.AsyncClient, task_type: str, params: dict[str, Any], where: str, says: str
) -> None:
    found = await refused(http, body(task_type, params))
    assert where in found, found
    assert says in found[where], found[where]


async def test_a_misspelt_params_section_is_not_silently_ignored(http: httpx.AsyncClient) -> None:
    sent = body("compute_benchmark")
    sent["experiment_spec"]["task"]["parms"] = sent["experiment_spec"]["task"].pop("params")
    found = await refused(http, sent)
    assert found == {
        "body.experiment_spec.task.parms": "unknown name 'parms' in task; did you mean "
        "'params'? valid names: description, name, params, type"
    }


async def test_a_framework_the_task_cannot_run_with_lists_the_accepted_ones(
    http: httpx.AsyncClient,
) -> None:
    found = await refused(http, body("gpu_benchmark", framework={"name": "numpy"}))
    assert found == {
        "body.experiment_spec.framework.name": "framework 'numpy' cannot run task type "
        "'gpu_benchmark'; accepted: pytorch (or no framework)"
    }
    found = await refused(http, body("memory_benchmark", framework={"name": "tensorrt"}))
    assert "accepted: numpy, pytorch" in found["body.experiment_spec.framework.name"]


async def test_framework_params_are_checked_as_the_tasks(http: httpx.AsyncClient) -> None:
    framework = {"name": "pytorch", "params": {"device": "quantum"}}
    found = await refused(http, body("compute_benchmark", framework=framework))
    assert list(found) == ["body.experiment_spec.framework.params.device"]


async def test_an_impossible_deadline_is_refused(http: httpx.AsyncClient) -> None:
    sent = body("compute_benchmark", capability_requirements={"timeout_seconds": 10**20})
    found = await refused(http, sent)
    assert "30 days" in found["body.experiment_spec.capability_requirements.timeout_seconds"]


@pytest.mark.parametrize("name", list(EXAMPLES))
async def test_every_example_is_accepted(http: httpx.AsyncClient, name: str) -> None:
    document = EXAMPLES[name] | {"id": unique("example")}
    response = await http.post("/api/v1/experiments/", json={"experiment_spec": document})
    assert response.status_code == 200, response.text


async def test_a_spec_stored_before_the_checks_is_still_listed_and_shown(
    http: httpx.AsyncClient, storage: StorageBackend
) -> None:
    old = ExperimentSpec(
        id=unique("old"),
        name="stored before params were typed",
        model="none",
        task=TaskSpec(name="t", type=TaskType.COMPUTE_BENCHMARK, params={"matrix_sizs": [9]}),
    )
    await storage.create_experiment(old)
    shown = await http.get(f"/api/v1/experiments/{old.id}")
    assert shown.status_code == 200
    assert shown.json()["experiment"]["task"]["params"] == {"matrix_sizs": [9]}
    listed = (await http.get("/api/v1/experiments/")).json()["experiments"]
    assert old.id in [e["id"] for e in listed]


# Limits at the door


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 200, 255])
async def test_deeply_nested_params_are_422_naming_the_limit(
    http: httpx.AsyncClient, levels: int
) -> None:
    found = await refused(http, body("compute_benchmark", {"x": deep(levels)}))
    ((where, message),) = found.items()
    assert where.startswith("body.experiment_spec.task.params.x.x.x")
    assert f"at most {MAX_DEPTH} levels deep" in message


async def test_a_document_at_the_depth_limit_runs_as_a_job(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    """What the door lets through, the worker decodes: 200 levels used to wedge its job."""
    agent_id = await register(http, fake_agent.url)
    # The spec is level 1, its metrics 2: 30 levels more fill the limit.
    sent = body("compute_benchmark", metrics={"metrics": deep(MAX_DEPTH - 2)})
    response = await http.post("/api/v1/experiments/", json=sent)
    assert response.status_code == 200, response.text
    job = await create_job(http, response.json()["experiment_id"], agent_id)
    ended = await wait_job(http, job.job_id, JobStatusEnum.COMPLETED, JobStatusEnum.FAILED)
    assert ended.status.status is JobStatusEnum.COMPLETED, ended.status

    one_more = body("compute_benchmark", metrics={"metrics": deep(MAX_DEPTH - 1)})
    found = await refused(http, one_more)
    assert list(found) == ["body.experiment_spec.metrics.metrics" + ".x" * (MAX_DEPTH - 2)]


async def test_an_experiment_past_the_size_limit_is_422_naming_it(
    http: httpx.AsyncClient,
) -> None:
    notes = {f"note{i}": "n" * 1000 for i in range(MAX_EXPERIMENT_BYTES // 1000 + 1)}
    found = await refused(http, body("compute_benchmark", metrics={"metrics": notes}))
    message = found["body.experiment_spec"]
    assert f"at most {MAX_EXPERIMENT_BYTES} are accepted" in message


@pytest.mark.parametrize("spelled", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_anywhere_are_422_naming_the_field(
    http: httpx.AsyncClient, spelled: str
) -> None:
    response = await http.post(
        "/api/v1/jobs",
        content=f'{{"experiment_id": {spelled}, "agent_id": "a"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "experiment_id"]
    assert problem["msg"] == f"{spelled} is not a number JSON allows: it must be finite"

    sent = json.dumps(body("compute_benchmark", {"min_duration_seconds": 1})).replace(
        '"min_duration_seconds": 1', f'"min_duration_seconds": {spelled}'
    )
    response = await http.post(
        "/api/v1/experiments/", content=sent, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    locations = [e["loc"] for e in response.json()["detail"]]
    assert locations == [["body", "experiment_spec", "task", "params", "min_duration_seconds"]]


async def test_a_non_finite_body_that_is_no_object_is_422_not_500(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/api/v1/jobs", "/api/v1/experiments/", "/api/v1/agents/register"):
        response = await http.post(
            path, content="NaN", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (path, response.text)


async def test_text_a_workflow_cannot_carry_is_refused(http: httpx.AsyncClient) -> None:
    sent = json.dumps(body("compute_benchmark", description="PLACEHOLDER"))
    sent = sent.replace("PLACEHOLDER", "bad \\ud800 text")
    response = await http.post(
        "/api/v1/experiments/", content=sent, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "experiment_spec", "description"]
    assert "not valid Unicode" in problem["msg"]
