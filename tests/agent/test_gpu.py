"""gpu_benchmark and GPU compute_benchmark: clean failure or fallback here, real runs on a GPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.gpu import gpu_present, mps_present, torch_installed
from tests.agent.jobs import agent_state, experiment, submit, wait_for_end
from tests.support.processes import AgentProcess

PRECISIONS = ["fp32", "tf32", "fp16", "bf16", "fp8"]


@pytest.fixture
def gpu_less(client: httpx.Client, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of an agent that sees no GPU: the shared one here, else one with CUDA hidden."""
    if not gpu_present():
        yield client
        return
    if mps_present():
        pytest.skip("an Apple MPS device cannot be hidden from torch")
    agent = AgentProcess(tmp_path / "data", log_path=tmp_path / "agent.log")
    agent.env["CUDA_VISIBLE_DEVICES"] = ""
    with agent, httpx.Client(base_url=agent.url, timeout=15) as http:
        yield http


def no_gpu_reason() -> str:
    if torch_installed():
        return "no GPU available: torch sees no CUDA or MPS device"
    return "no GPU available: torch is not installed"


def test_gpu_benchmark_without_a_gpu_fails_saying_so(gpu_less: httpx.Client) -> None:
    job_id = submit(gpu_less, experiment("gpu_benchmark", framework="pytorch"))

    final = wait_for_end(gpu_less, job_id, timeout=60)
    assert final["status"] == "failed"
    assert no_gpu_reason() in final["message"]
    result = gpu_less.get(f"/api/v1/results/{job_id}").json()
    assert no_gpu_reason() in result["error"]
    assert agent_state(gpu_less)["status"] == "idle"
    assert gpu_less.get("/health").json()["status"] == "healthy"


def test_info_tells_whether_gpu_benchmark_can_run_here(client: httpx.Client) -> None:
    capabilities = client.get("/api/v1/info").json()["agent_info"]["capabilities"]

    gpu = capabilities["tasks"]["gpu_benchmark"]
    assert gpu["available"] is gpu_present()
    assert ("gpu_benchmark" in capabilities["task_types"]) is gpu_present()
    if gpu_present():
        assert gpu["reason"] is None
        assert "pytorch" in capabilities["frameworks"]
    else:
        assert no_gpu_reason() in gpu["reason"]
        assert capabilities["tasks"]["compute_benchmark"]["frameworks"] == ["numpy"]


def test_compute_benchmark_asking_for_cuda_says_which_backend_ran(client: httpx.Client) -> None:
    params = {"matrix_sizes": [64], "precision_types": ["fp32", "bf16"], "iterations": 2}
    spec = experiment("compute_benchmark", framework="pytorch")
    spec["framework"]["params"] = {"device": "gpu"}  # framework params ask too
    spec["task"]["params"] = params
    job_id = submit(client, spec)

    assert wait_for_end(client, job_id, timeout=60)["status"] == "completed"
    output = client.get(f"/api/v1/results/{job_id}").json()["output"]
    assert output["device_requested"] == "gpu"
    assert {(r["matrix_size"], r["precision"]) for r in output["results"]} >= {(64, "fp32")}
    assert all(r["gflops_best"] > 0 for r in output["results"])
    if gpu_present():
        assert output["backend"] in ("torch-cuda", "torch-mps")
        assert output["framework"] == "pytorch"
    else:
        assert output["backend"] == "numpy"
        assert no_gpu_reason() in output["backend_note"]
        assert "ran with NumPy" in output["backend_note"]


@pytest.mark.gpu
def test_gpu_benchmark_measures_bandwidth_and_matmul_per_precision(client: httpx.Client) -> None:
    params = {
        "matrix_sizes": [512],
        "precision_types": PRECISIONS,
        "iterations": 3,
        "warmup_iterations": 1,
        "memory_sizes_mb": [16],
        "memory_iterations": 3,
        "runs": 2,
    }
    job_id = submit(client, experiment("gpu_benchmark", params, framework="pytorch"))

    final = wait_for_end(client, job_id, timeout=120)
    assert final["status"] == "completed", final
    result = client.get(f"/api/v1/results/{job_id}").json()
    output, metrics = result["output"], result["metrics"]
    assert result["hardware_info"]["name"]
    measured = {row["precision"] for row in output["matmul"]}
    skipped = {row["precision"] for row in output["skipped"] if "precision" in row}
    assert "fp32" in measured
    assert measured | skipped == set(PRECISIONS)
    assert all(row["reason"] for row in output["skipped"])
    assert all(row["tflops_best"] > 0 for row in output["matmul"])
    assert {row["copy"] for row in output["memory"]} == {"d2d", "h2d", "d2h"}
    assert all(row["gbps_best"] > 0 for row in output["memory"])
    assert metrics["peak_tflops_fp32"] > 0
    assert metrics["peak_d2d_gbps"] > 0
    assert len(metrics["repeats"]["raw"]["peak_tflops_fp32"]) == 2
