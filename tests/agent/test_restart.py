"""What a restarted agent remembers: its id, finished jobs, and that a running job was lost."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil

from tests.agent.jobs import (
    agent_state,
    experiment,
    job_status,
    long_compute,
    submit,
    task_processes,
    wait_for_end,
)
from tests.support.processes import AgentProcess, wait_until


def test_a_restarted_agent_still_answers_for_its_jobs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = AgentProcess(data_dir, log_path=tmp_path / "first.log").start()
    try:
        with httpx.Client(base_url=first.url, timeout=15) as http:
            agent_id = http.get("/health").json()["agent_id"]
            finished = submit(http, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
            assert wait_for_end(http, finished)["status"] == "completed"
            result = http.get(f"/api/v1/results/{finished}").json()

            interrupted = submit(http, long_compute())
            (process,) = wait_until(lambda: task_processes(first.pid), 10, what="a job process")
    finally:
        first.kill()  # a crash: no chance to record anything
    # The orphaned job process notices and exits by itself.
    wait_until(lambda: not psutil.pid_exists(process.pid), 10, what="the orphan exiting")

    with (
        AgentProcess(data_dir, log_path=tmp_path / "second.log") as second,
        httpx.Client(base_url=second.url, timeout=15) as http,
    ):
        assert agent_id.startswith("agent_")
        assert http.get("/health").json()["agent_id"] == agent_id
        assert agent_state(http)["status"] == "idle"

        assert job_status(http, finished)["status"] == "completed"
        assert http.get(f"/api/v1/results/{finished}").json() == result

        lost = job_status(http, interrupted)
        assert lost["status"] == "failed"
        assert "restarted while this job was running" in lost["message"]
        assert (lost["error_type"], lost["attempt"]) == ("AgentRestarted", 1)
        lost_result = http.get(f"/api/v1/results/{interrupted}").json()
        assert lost_result["error_type"] == "AgentRestarted"

        # A finished job is still not run again, and new work runs normally.
        again = http.post(
            "/api/v1/jobs",
            json={"job_id": finished, "experiment_spec": experiment("memory_benchmark")},
        )
        assert again.json()["job_status"]["status"] == "completed"
        assert http.get(f"/api/v1/results/{finished}").json() == result
        fresh = submit(http, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
        assert wait_for_end(http, fresh)["status"] == "completed"


def test_a_job_the_agent_lost_runs_again_when_sent_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = experiment(
        "compute_benchmark",
        {"matrix_sizes": [64], "precision_types": ["fp32"], "min_duration_seconds": 2},
    )
    spec["id"] = "exp_lost_and_run_again"
    first = AgentProcess(data_dir, log_path=tmp_path / "first.log").start()
    try:
        with httpx.Client(base_url=first.url, timeout=15) as http:
            job_id = submit(http, spec)
            wait_until(lambda: job_status(http, job_id).get("stage"), 10, what="a stage")
    finally:
        first.kill()

    with (
        AgentProcess(data_dir, port=first.port, log_path=tmp_path / "second.log") as second,
        httpx.Client(base_url=second.url, timeout=15) as http,
    ):
        assert job_status(http, job_id)["error_type"] == "AgentRestarted"
        body = {"job_id": job_id, "experiment_spec": spec}
        assert http.post("/api/v1/jobs", json=body).json() == {
            "job_id": job_id,
            "status": "accepted",
        }
        # Sent once more while it runs again: the same job, not a third run.
        repeat = http.post("/api/v1/jobs", json=body).json()
        assert repeat["job_status"]["status"] == "running"
        assert repeat["job_status"]["attempt"] == 2
        (process,) = wait_until(lambda: task_processes(second.pid), 10, what="a job process")

        final = wait_for_end(http, job_id)
        assert (final["status"], final["attempt"]) == ("completed", 2)
        assert "error_type" not in final
        result = http.get(f"/api/v1/results/{job_id}").json()
        assert result["status"] == "completed" and result["error"] is None
        log = http.get(f"/api/v1/jobs/{job_id}/logs").json()
        assert log["complete"]
        lines = log["text"].splitlines()
        # Both attempts in one log: the first cut short, the second to its end.
        assert [line.split(" ", 2)[2] for line in lines if "agent: accepted" in line] == [
            "accepted: the compute_benchmark task of experiment 'exp_lost_and_run_again' "
            "(compute_benchmark test)",
            "accepted: the compute_benchmark task of experiment 'exp_lost_and_run_again' "
            "(compute_benchmark test); attempt 2, sent again after attempt 1 was lost when the "
            "agent stopped",
        ]
        assert any("restarted while this job was running" in line for line in lines)
        assert "GFLOP/s best" in log["text"] and "ended completed" in lines[-1]
        assert not psutil.pid_exists(process.pid) or process.status() == psutil.STATUS_ZOMBIE
        # Done now: sent again, it is not run a third time.
        again = http.post("/api/v1/jobs", json=body).json()
        assert again["job_status"]["status"] == "completed"


def test_a_configured_agent_id_wins(tmp_path: Path) -> None:
    settings = {"agent_id": "agent_lab_7", "agent_name": "lab machine 7"}
    with AgentProcess(tmp_path / "data", settings=settings, log_path=tmp_path / "a.log") as agent:
        assert httpx.get(agent.url + "/health").json()["agent_id"] == "agent_lab_7"
        info = httpx.get(agent.url + "/api/v1/info", timeout=15).json()["agent_info"]
        assert info["agent_id"] == "agent_lab_7"
        assert info["agent_name"] == "lab machine 7"


def test_stopping_the_agent_stops_its_job_and_records_why(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = AgentProcess(data_dir, log_path=tmp_path / "first.log")
    with first as agent, httpx.Client(base_url=agent.url, timeout=15) as http:
        job_id = submit(http, long_compute())
        (task_process,) = wait_until(lambda: task_processes(agent.pid), 10, what="a job process")
        agent.stop()  # SIGTERM: a graceful shutdown
        assert not psutil.pid_exists(task_process.pid)

    second = AgentProcess(data_dir, log_path=tmp_path / "second.log")
    with second as agent, httpx.Client(base_url=agent.url, timeout=15) as http:
        status = job_status(http, job_id)
        assert status["status"] == "failed"
        assert "shut down while the job ran" in status["message"]
        # Lost, not failed by the job itself: the server may send it again.
        assert status["error_type"] == "AgentRestarted"
