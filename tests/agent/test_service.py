"""The agent as a service: machine info, bearer token, and the error state."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import httpx
import numpy
import psutil
import pytest

from tests.agent.jobs import experiment
from tests.support.processes import AgentProcess


def test_info_reports_this_machine(client: httpx.Client) -> None:
    response = client.get("/api/v1/info")
    assert response.status_code == 200
    info = response.json()["agent_info"]
    system = info["system_info"]

    assert system["cpu"]["cores_logical"] == os.cpu_count()
    assert system["cpu"]["cores_physical"] == psutil.cpu_count(logical=False)
    assert system["cpu"]["architecture"] == platform.machine().lower()
    assert system["cpu"]["model"]
    total_gb = psutil.virtual_memory().total / 2**30
    assert system["system"]["total_memory_gb"] == pytest.approx(total_gb)
    assert 0 < system["system"]["available_memory_gb"] <= total_gb
    assert system["system"]["python_version"] == platform.python_version()
    assert system["system"]["hostname"] == socket.gethostname()
    assert system["system"]["kernel"] == platform.release()
    numpy_entry = {"name": "numpy", "version": numpy.__version__, "available": True}
    assert numpy_entry | {"capabilities": {}} in system["frameworks"]
    assert isinstance(system["gpus"], list)
    assert (system["models"], system["hooks"], system["metrics"]) == ([], [], [])
    capabilities = info["capabilities"]
    assert set(capabilities["tasks"]) == {
        "compute_benchmark",
        "memory_benchmark",
        "gpu_benchmark",
        "llm_generation",
    }
    for name in ("compute_benchmark", "memory_benchmark", "llm_generation"):
        assert capabilities["tasks"][name]["available"] is True
        assert name in capabilities["task_types"]
    assert {"numpy", "openai"} <= set(capabilities["frameworks"])
    assert capabilities["tasks"]["llm_generation"]["frameworks"] == ["openai"]
    assert info["agent_id"] == client.get("/health").json()["agent_id"]


def test_with_a_token_every_endpoint_but_health_requires_it(tmp_path: Path) -> None:
    token = "s3cret-agent-token"
    log = tmp_path / "agent.log"
    with AgentProcess(tmp_path / "data", settings={"token": token}, log_path=log) as agent:
        health = httpx.get(agent.url + "/health")
        assert health.status_code == 200

        body = {"job_id": "job_t", "experiment_spec": experiment("compute_benchmark")}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            assert httpx.get(agent.url + "/api/v1/status", headers=headers).status_code == 401
            post = httpx.post(agent.url + "/api/v1/jobs", json=body, headers=headers)
            assert post.status_code == 401
        assert httpx.get(agent.url + "/api/v1/status/job_t").status_code == 401

        good = {"Authorization": f"Bearer {token}"}
        assert httpx.get(agent.url + "/api/v1/status", headers=good).json()["status"] == "idle"
        assert httpx.get(agent.url + "/api/v1/status/job_t", headers=good).status_code == 404
        assert httpx.get(agent.url + "/api/v1/info", headers=good, timeout=15).status_code == 200
    assert token not in agent.log()


def test_an_agent_that_cannot_store_jobs_reports_error_and_refuses_work(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    with AgentProcess(blocker / "agent", log_path=tmp_path / "agent.log") as agent:
        assert httpx.get(agent.url + "/health").json()["status"] == "degraded"
        assert httpx.get(agent.url + "/api/v1/status").json()["status"] == "error"

        body = {"job_id": "job_e", "experiment_spec": experiment("compute_benchmark")}
        response = httpx.post(agent.url + "/api/v1/jobs", json=body)
        assert response.status_code == 503
        assert "data directory" in response.json()["detail"]
