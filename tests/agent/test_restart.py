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
        lost_result = http.get(f"/api/v1/results/{interrupted}").json()
        assert lost_result["error_type"] == "AgentRestart"

        # The same job id is still not run again, and new work runs normally.
        again = http.post(
            "/api/v1/jobs", json={"job_id": interrupted, "experiment_spec": long_compute()}
        )
        assert again.json()["job_status"]["status"] == "failed"
        fresh = submit(http, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
        assert wait_for_end(http, fresh)["status"] == "completed"


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
