"""One job at a time: busy answers, resubmission, cancel, deadlines and bad requests."""

from __future__ import annotations

import httpx
import psutil
import pytest

from tests.agent.jobs import (
    agent_state,
    experiment,
    job_status,
    long_compute,
    new_job_id,
    submit,
    task_processes,
    wait_for_end,
)
from tests.support.processes import AgentProcess, wait_until


def test_another_job_while_one_runs_gets_409_and_results_wait(client: httpx.Client) -> None:
    running = submit(client, long_compute())

    other = new_job_id()
    body = {"job_id": other, "experiment_spec": experiment("memory_benchmark")}
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 409
    assert running in response.json()["detail"]
    assert client.get(f"/api/v1/status/{other}").status_code == 404

    # Results of a job that still runs are a conflict, not "unknown job".
    response = client.get(f"/api/v1/results/{running}")
    assert response.status_code == 409
    assert "not ready" in response.json()["detail"]

    assert client.delete(f"/api/v1/jobs/{running}").json()["status"] == "cancelled"


def test_resubmitting_a_job_id_never_runs_it_again(client: httpx.Client) -> None:
    spec = experiment("compute_benchmark", {"matrix_sizes": [64], "min_duration_seconds": 1})
    job_id = submit(client, spec)
    body = {"job_id": job_id, "experiment_spec": spec}

    again = client.post("/api/v1/jobs", json=body)
    assert again.status_code == 200
    assert again.json()["job_status"]["status"] == "running"

    assert wait_for_end(client, job_id)["status"] == "completed"
    first_result = client.get(f"/api/v1/results/{job_id}").json()

    after = client.post("/api/v1/jobs", json=body)
    assert after.status_code == 200
    assert after.json()["status"] == "accepted"
    assert after.json()["job_status"]["status"] == "completed"
    # Not started again: the agent stays idle and the one result is unchanged.
    assert agent_state(client)["status"] == "idle"
    assert client.get(f"/api/v1/results/{job_id}").json() == first_result


def test_cancel_stops_the_running_job_and_its_process(
    client: httpx.Client, agent: AgentProcess
) -> None:
    job_id = submit(client, long_compute())
    (task_process,) = wait_until(lambda: task_processes(agent.pid), 10, what="the job's process")

    response = client.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert not psutil.pid_exists(task_process.pid)
    assert task_processes(agent.pid) == []
    assert agent_state(client)["status"] == "idle"

    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["status"] == "cancelled"
    assert result["error_type"] == "Cancelled"
    # Cancelling a finished job changes nothing.
    again = client.delete(f"/api/v1/jobs/{job_id}")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_a_job_past_its_deadline_is_stopped_as_timeout(
    client: httpx.Client, agent: AgentProcess
) -> None:
    job_id = submit(client, long_compute(timeout_seconds=1))

    final = wait_for_end(client, job_id, timeout=15)
    assert final["status"] == "timeout"
    assert "deadline of 1 s" in final["message"]
    result = client.get(f"/api/v1/results/{job_id}").json()
    assert result["status"] == "timeout"
    assert result["error_type"] == "Timeout"
    assert task_processes(agent.pid) == []
    assert agent_state(client)["status"] == "idle"


def test_status_keeps_answering_while_a_cpu_heavy_job_runs(
    client: httpx.Client, agent: AgentProcess
) -> None:
    job_id = submit(client, long_compute())
    (task_process,) = wait_until(lambda: task_processes(agent.pid), 10, what="the job's process")
    # Past start-up (imports take well under a CPU second): the matmul loop is running.
    wait_until(lambda: task_process.cpu_times().user > 1.5, 15, what="the job burning CPU")

    # The job runs in its own process, so the agent's event loop is never the one computing.
    for _ in range(20):
        status = client.get("/api/v1/status", timeout=5).json()
        assert status["status"] == "active"
        assert status["current_job_id"] == job_id

    client.delete(f"/api/v1/jobs/{job_id}")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"experiment_spec": experiment("compute_benchmark")}, ["body", "job_id"]),
        (
            {"job_id": "bad id/1", "experiment_spec": experiment("compute_benchmark")},
            ["body", "job_id"],
        ),
        (
            {"job_id": "job_1", "experiment_spec": experiment("no_such_task")},
            ["body", "experiment_spec", "task", "type"],
        ),
        (
            {"job_id": "job_1", "experiment_spec": {"name": "x", "task": {"name": "t"}}},
            ["body", "experiment_spec", "model"],
        ),
    ],
    ids=["missing-job-id", "bad-job-id", "bad-task-type", "missing-model"],
)
def test_a_malformed_request_is_rejected_naming_the_field(
    client: httpx.Client, body: dict[str, object], loc: list[str]
) -> None:
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 422
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert agent_state(client)["status"] == "idle"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/status/job_unknown"),
        ("GET", "/api/v1/results/job_unknown"),
        ("DELETE", "/api/v1/jobs/job_unknown"),
    ],
)
def test_unknown_jobs_are_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert "job_unknown" in response.json()["detail"]


def test_every_job_status_has_a_zone_aware_timestamp_and_a_message(client: httpx.Client) -> None:
    job_id = submit(client, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
    running = job_status(client, job_id)
    final = wait_for_end(client, job_id)
    for status in (running, final):
        assert status["message"]
        assert status["timestamp"].endswith(("Z", "+00:00"))
