"""A job from submission to results, for each task the agent runs."""

from __future__ import annotations

import os
from datetime import datetime

import httpx
import numpy
import psutil
import pytest

from tests.agent.jobs import agent_state, experiment, job_status, submit, wait_for_end


def test_compute_benchmark_runs_to_completion_with_results(client: httpx.Client) -> None:
    params = {
        "matrix_sizes": [64, 128],
        "precision_types": ["fp32", "fp64", "bf16"],
        "iterations": 2,
        "min_duration_seconds": 0.5,
    }
    job_id = submit(client, experiment("compute_benchmark", params))

    assert job_status(client, job_id)["status"] == "running"
    state = agent_state(client)
    assert state["status"] == "active"
    assert state["current_job_id"] == job_id
    assert state["running_jobs"] == [job_id]

    final = wait_for_end(client, job_id)
    assert final["status"] == "completed", final
    assert "compute_benchmark" in final["message"]

    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["job_id"] == job_id
    assert result["status"] == "completed"
    assert result["error"] is None
    measured = {(r["matrix_size"], r["precision"]) for r in result["output"]["results"]}
    assert measured == {(64, "fp32"), (64, "fp64"), (128, "fp32"), (128, "fp64")}
    assert all(r["gflops_best"] > 0 and r["iterations"] >= 2 for r in result["output"]["results"])
    assert result["output"]["skipped"] == [
        {"precision": "bf16", "reason": "NumPy has no bfloat16 type"}
    ]
    assert result["metrics"]["peak_gflops"] > 0
    assert result["metrics"]["gflops_fp64_128"] > 0
    # min_duration_seconds made the job last at least that long.
    started = datetime.fromisoformat(result["started_at"])
    completed = datetime.fromisoformat(result["completed_at"])
    assert (completed - started).total_seconds() >= 0.5
    assert result["hardware_info"]["numpy_version"] == result["framework_version"]
    # The machine it ran on, for comparisons across agents.
    machine = result["hardware_info"]
    assert machine["cpu"]["cores_logical"] == os.cpu_count()
    assert machine["memory_total_gb"] == pytest.approx(psutil.virtual_memory().total / 2**30, 0.01)
    assert machine["frameworks"]["numpy"] == numpy.__version__

    state = agent_state(client)
    assert state["status"] == "idle"
    assert state["current_job_id"] is None
    newest = state["available_results"][0]
    assert newest == {
        "job_id": job_id,
        "completed_at": newest["completed_at"],
        "result_type": "success",
    }
    assert datetime.fromisoformat(newest["completed_at"]) == completed


def test_memory_benchmark_runs_to_completion_with_results(client: httpx.Client) -> None:
    params = {"test_sizes_mb": [1, 4], "test_patterns": ["sequential", "random"]}
    # pytorch is accepted for this task: it runs with NumPy and the result says so.
    job_id = submit(client, experiment("memory_benchmark", params, framework="pytorch"))

    final = wait_for_end(client, job_id)
    assert final["status"] == "completed", final

    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["status"] == "completed"
    rows = {(r["size_mb"], r["pattern"]): r for r in result["output"]["results"]}
    assert set(rows) == {(1, "sequential"), (1, "random"), (4, "sequential"), (4, "random")}
    assert all(r["gbps_best"] > 0 and r["iterations"] == 3 for r in rows.values())
    assert result["metrics"]["peak_sequential_gbps"] > 0
    assert result["metrics"]["peak_random_gbps"] > 0
    assert "pytorch" in result["output"]["framework_note"]
    assert agent_state(client)["status"] == "idle"


def misspelt_params() -> dict[str, object]:
    spec = experiment("compute_benchmark")
    spec["task"]["parms"] = spec["task"].pop("params")
    return spec


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        (experiment("gpu_benchmark", framework="numpy"), "framework 'numpy' is not supported"),
        (experiment("llm_generation", framework="openai"), "prompt_template: Field required"),
        (experiment("compute_benchmark", framework="vllm"), "framework 'vllm' is not supported"),
        (experiment("compute_benchmark", {"matrix_sizes": [0]}), "matrix_sizes.0"),
        (experiment("memory_benchmark", {"runs": 0}), "runs: Input should be greater than"),
        # More memory than the machine has: refused before anything is allocated.
        (experiment("memory_benchmark", {"test_sizes_mb": [65536]}), "free memory"),
        # What the server refuses at the door, the agent refuses too (specs stored before).
        (misspelt_params(), "task.parms: unknown name 'parms' in task; did you mean 'params'?"),
        (experiment("compute_benchmark", {"matrix_sizs": [64]}), "did you mean 'matrix_sizes'?"),
    ],
    ids=["gpu-framework", "llm-params", "framework", "params", "runs", "memory", "parms", "name"],
)
def test_a_job_the_agent_cannot_run_fails_clearly_and_the_agent_stays_idle(
    client: httpx.Client, spec: dict[str, object], named: str
) -> None:
    job_id = submit(client, spec)

    final = wait_for_end(client, job_id)
    assert final["status"] == "failed"
    assert named in final["message"]
    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["status"] == "failed"
    assert named in result["error"]
    assert result["error_type"] == "TaskError"

    assert agent_state(client)["status"] == "idle"
    assert client.get("/health").json()["status"] == "healthy"
