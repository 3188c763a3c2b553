"""Building experiment specs and driving jobs on a real agent."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psutil

from common.models import JobStatusEnum
from tests.support.processes import wait_until


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex[:10]}"


def experiment(
    task_type: str,
    params: dict[str, Any] | None = None,
    *,
    framework: str = "numpy",
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": f"{task_type} test",
        "model": "none",
        "task": {"name": task_type, "type": task_type, "params": params or {}},
        "framework": {"name": framework},
    }
    if timeout_seconds is not None:
        spec["capability_requirements"] = {"timeout_seconds": timeout_seconds}
    return spec


def long_compute(**extra: Any) -> dict[str, Any]:
    """A CPU-bound job that runs until stopped (or 30 s)."""
    params = {"matrix_sizes": [512], "precision_types": ["fp64"], "min_duration_seconds": 30}
    return experiment("compute_benchmark", params, **extra)


def submit(client: httpx.Client, spec: dict[str, Any], job_id: str | None = None) -> str:
    job_id = job_id or new_job_id()
    response = client.post("/api/v1/jobs", json={"job_id": job_id, "experiment_spec": spec})
    assert response.status_code == 200, response.text
    assert response.json() == {"job_id": job_id, "status": "accepted"}
    return job_id


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/status/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_end(client: httpx.Client, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The job's final JobStatus, once it has one."""

    def ended() -> dict[str, Any] | None:
        status = job_status(client, job_id)
        return status if JobStatusEnum(status["status"]).is_terminal else None

    return wait_until(ended, timeout, interval=0.1, what=f"job {job_id} ending")


def agent_state(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/v1/status")
    assert response.status_code == 200, response.text
    return response.json()


def task_processes(agent_pid: int) -> list[psutil.Process]:
    """The agent's child processes (its running job) that are alive."""
    alive = []
    for proc in psutil.Process(agent_pid).children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive
