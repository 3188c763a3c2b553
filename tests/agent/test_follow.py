"""Following a job on the agent: its stage and fraction done while it runs, and its log read by
offset as it grows, bounded, and complete once the job has ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.agent import contract
from tests.agent.jobs import experiment, job_status, new_job_id, submit, wait_for_end
from tests.support.processes import AgentProcess, wait_until

STAGES = (
    "preparing the matrices",
    "matmul 64 fp32",
    "matmul 64 fp64",
    "matmul 128 fp32",
    "matmul 128 fp64",
)


def three_runs(min_duration: float = 1.5) -> dict[str, Any]:
    """A compute job of three runs over four cases, each run lasting `min_duration` s."""
    params = {
        "matrix_sizes": [64, 128],
        "precision_types": ["fp32", "fp64"],
        "min_duration_seconds": min_duration,
        "runs": 3,
    }
    return experiment("compute_benchmark", params)


def read_log(client: httpx.Client, job_id: str, offset: int) -> contract.JobLog:
    answer = client.get(f"/api/v1/jobs/{job_id}/logs", params={"offset": offset})
    assert answer.status_code == 200, answer.text
    stretch = contract.JobLog.model_validate(answer.json())
    assert stretch.job_id == job_id and stretch.offset == offset
    assert stretch.next_offset == offset + len(stretch.text.encode())
    return stretch


def test_stage_progress_and_log_lines_arrive_while_a_multi_stage_job_runs(
    client: httpx.Client,
) -> None:
    job_id = submit(client, three_runs())
    seen: list[contract.JobStatus] = []
    log, offset, read_while_running = "", 0, ""

    def follow() -> bool:
        nonlocal log, offset, read_while_running
        stretch = read_log(client, job_id, offset)
        log, offset = log + stretch.text, stretch.next_offset
        # Asked after the log: a job still running now was running when its log was read.
        status = contract.JobStatus.model_validate(job_status(client, job_id))
        if status.status == "running":
            assert not stretch.complete
            seen.append(status)
            read_while_running = log
        return stretch.complete

    wait_until(follow, 60, interval=0.1, what=f"job {job_id} ending with its whole log read")

    # While it ran: stages naming the case and the run, a fraction that only grew.
    stages = [s.stage for s in seen if s.stage]
    assert {f"run {k} of 3" for k in (1, 2, 3)} <= {stage.split(", ")[-1] for stage in stages}
    assert all(stage.startswith(STAGES) for stage in stages), stages
    fractions = [s.progress for s in seen if s.progress is not None]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] <= 1
    assert fractions[-1] > 2 / 3 > fractions[0]  # seen in the first run and in the last
    assert all(s.attempt == 1 and s.started_at is not None for s in seen)
    # The task's own lines came while the job ran, one per case and run.
    assert "run 1 of 3 done" in read_while_running
    assert "matmul 128 fp64: " in read_while_running and "GFLOP/s best" in read_while_running

    final = job_status(client, job_id)
    assert final["status"] == "completed" and "stage" not in final and "progress" not in final
    lines = log.splitlines()
    assert "agent: accepted: the compute_benchmark task" in lines[0]
    assert "agent: ended completed: completed the compute_benchmark task" in lines[-1]
    assert sum("GFLOP/s best" in line for line in lines) == 4 * 3
    # Read again from the start, in one go, the log is the same.
    assert read_log(client, job_id, 0).text == log
    assert read_log(client, job_id, offset) == contract.JobLog(
        job_id=job_id, offset=offset, next_offset=offset, text="", complete=True
    )


def test_a_log_answer_is_cut_at_a_character_and_unknown_jobs_are_404(
    client: httpx.Client, agent: AgentProcess
) -> None:
    job_id = submit(client, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
    wait_for_end(client, job_id)
    whole = read_log(client, job_id, 0)
    assert whole.complete and whole.text.isascii()
    # Past the end: nothing, and still complete.
    assert read_log(client, job_id, whole.next_offset + 10).text == ""

    missing = client.get(f"/api/v1/jobs/{new_job_id()}/logs")
    assert missing.status_code == 404 and "is not known" in missing.json()["detail"]
    assert client.get(f"/api/v1/jobs/{job_id}/logs", params={"offset": -1}).status_code == 422


def test_a_log_is_bounded_keeping_its_head_and_tail(tmp_path: Path) -> None:
    limit = 4096
    settings = {"job_log_max_bytes": str(limit)}
    # Forty runs log about 200 lines, some 14 KB: far past the limit.
    params = {"matrix_sizes": [16], "precision_types": ["fp32", "fp64"], "runs": 40}
    with (
        AgentProcess(tmp_path / "data", settings=settings, log_path=tmp_path / "a.log") as agent,
        httpx.Client(base_url=agent.url, timeout=15) as http,
    ):
        job_id = submit(http, experiment("compute_benchmark", params))
        wait_for_end(http, job_id, timeout=60)
        stretch = read_log(http, job_id, 0)
        on_disk = (agent.data_dir / "jobs" / f"{job_id}.log").read_text()

    assert stretch.complete and stretch.text == on_disk
    log = stretch.text
    head, _, rest = log.partition("\n[... this log reached 2048 bytes")
    assert rest, log
    assert len(head.encode()) <= limit // 2 and head.endswith("\n")  # whole lines
    assert "agent: accepted" in head and "run 1 of 40 done" in head
    assert "run 20 of 40 done" not in log  # the middle was dropped, and says so
    assert "bytes of output dropped here" in rest
    assert "run 40 of 40 done" in rest and "agent: ended completed" in log.splitlines()[-1]
    assert len(log.encode()) <= limit + 400  # the limit and the two markers
