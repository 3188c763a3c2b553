"""Jobs whose arrays would not fit in memory are refused before anything is allocated."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from agent.tasks import _memory, _torch
from agent.tasks.base import TaskError
from common.params import ComputeParams, MemoryParams
from common.requirements import GIB, cpu_matmul_bytes, memory_benchmark_bytes
from tests.agent.jobs import (
    agent_state,
    experiment,
    job_status,
    submit,
    task_processes,
    wait_for_end,
)
from tests.support.processes import AgentProcess

# The job of issue 16: about 38 GiB of matrices, allocated up front, on a 23 GiB machine.
ISSUE_SIZES = [16384, 16383, 16382, 16381]


def too_big_for_this_machine() -> dict[str, object]:
    """The issue's job, with more sizes while this machine could still hold it (twice over)."""
    total = psutil.virtual_memory().total
    sizes = list(ISSUE_SIZES)
    params = {"matrix_sizes": sizes, "precision_types": ["fp64", "fp32"]}
    while cpu_matmul_bytes(ComputeParams.model_validate(params)) < 2 * total:
        assert len(sizes) < 64, "this machine has more memory than a compute job can ask for"
        sizes.append(sizes[-1] - 1)
    return params


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


@pytest.mark.parametrize(
    ("task_type", "params", "says"),
    [
        (
            "compute_benchmark",
            too_big_for_this_machine(),
            "matrix_sizes [16384, 16383, 16382, 16381",
        ),
        (
            "memory_benchmark",
            {"test_sizes_mb": [1, 65536], "test_patterns": ["sequential"]},
            "the 65536 MB test holds a source, a destination and an index",
        ),
    ],
    ids=["compute", "memory"],
)
def test_a_job_needing_more_memory_than_the_machine_has_fails_before_allocating(
    agent: AgentProcess, client: httpx.Client, task_type: str, params: dict[str, object], says: str
) -> None:
    before = peak_rss(agent.pid)
    job_id = submit(client, experiment(task_type, params))
    # Refused by the agent while it accepted the job: failed at once, no job process started.
    assert job_status(client, job_id)["status"] == "failed"

    final = wait_for_end(client, job_id, timeout=20)
    assert says in final["message"], final["message"]
    assert "GiB of memory" in final["message"] and "(10% is kept free)" in final["message"]
    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["error_type"] == "TaskError"
    assert task_processes(agent.pid) == []
    assert peak_rss(agent.pid) - before < 64 * 1024 * 1024
    assert agent_state(client)["status"] == "idle"


def test_the_guard_message_says_what_the_job_needs_and_what_is_available(
    client: httpx.Client,
) -> None:
    params = {"test_sizes_mb": [65536]}
    needed = memory_benchmark_bytes(MemoryParams.model_validate(params)) / GIB
    job_id = submit(client, experiment("memory_benchmark", params))
    message = wait_for_end(client, job_id)["message"]
    assert f"this job needs about {needed:.1f} GiB of memory;" in message
    assert "GiB are available and a job may use" in message


def test_device_memory_is_asked_of_torch_and_guarded() -> None:
    """A narrow check of the GPU path (no GPU here): torch's free memory against the need."""
    torch = SimpleNamespace(cuda=SimpleNamespace(mem_get_info=lambda device: (2 * GIB, 16 * GIB)))
    free = _torch.free_memory(torch, "cuda:0")
    assert free == 2 * GIB
    _memory.require_device_memory(GIB, free, "cuda:0", "one case")
    with pytest.raises(TaskError) as refused:
        _memory.require_device_memory(3 * GIB, free, "cuda:0", "the largest matmul case")
    assert str(refused.value) == (
        "the largest matmul case: this job needs about 3.0 GiB of memory on cuda:0; 2.0 GiB "
        "are available and a job may use 1.8 GiB of it (10% is kept free)"
    )
    # Where torch cannot tell (an older MPS build), the job runs and torch reports running out.
    assert _torch.free_memory(SimpleNamespace(), "mps") is None
    _memory.require_device_memory(1000 * GIB, None, "mps", "one case")
