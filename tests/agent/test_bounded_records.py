"""An agent's records are bounded: start-up and /status do not grow with history, and records
past their retention (count and age) are deleted in the background, served until then."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from agent.runner import CACHED_RECORDS, JobRunner
from agent.store import JobRecord
from common.settings import AgentSettings
from tests.agent import contract
from tests.agent.jobs import experiment, submit, wait_for_end
from tests.agent.old_records import BASE, old_record, write_data_dir, write_many
from tests.support.processes import AgentProcess, wait_until

RECORDS = 100_000
KEEP_ALL = {"retention_max_records": "1000000", "retention_days": "3650"}
# Fifty entries of about a hundred bytes, and the rest of the status.
STATUS_BYTES = 16 * 1024
# The agent itself (Python, FastAPI, NumPy) takes about 100 MB; holding every record took 1 GB
# at 75,000 records.
AGENT_RSS_BYTES = 400 * 1024 * 1024


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir of an older agent: 100,000 finished jobs and one left running, no index."""
    data_dir = tmp_path_factory.mktemp("crowded") / "data"
    write_many(data_dir, RECORDS)
    running = old_record("job_running", BASE + timedelta(days=2), status="running")
    (data_dir / "jobs" / "job_running.json").write_text(json.dumps(running))
    yield data_dir


def status_of(http: httpx.Client) -> tuple[int, contract.AgentStatus]:
    response = http.get("/api/v1/status")
    assert response.status_code == 200, response.text
    return len(response.content), contract.AgentStatus.model_validate(response.json())


def test_a_hundred_thousand_records_start_small_and_answer_small(
    crowded: Path, tmp_path: Path
) -> None:
    for start in ("first", "second"):
        log = tmp_path / f"{start}.log"
        with (
            AgentProcess(crowded, settings=KEEP_ALL, log_path=log) as agent,
            httpx.Client(base_url=agent.url, timeout=15) as http,
        ):
            size, status = status_of(http)
            assert size < STATUS_BYTES
            listed = [r.job_id for r in status.available_results]
            # Newest first: the job the old agent left running ended failed at a start.
            assert listed == ["job_running"] + [
                f"job_{i:08d}" for i in range(RECORDS - 1, 99_950, -1)
            ]
            assert psutil.Process(agent.pid).memory_info().rss < AGENT_RSS_BYTES

            # The oldest job is still served, read from disk on demand.
            oldest = contract.JobStatus.model_validate(
                http.get("/api/v1/status/job_00000000").json()
            )
            assert (oldest.status, oldest.completed_at) == ("completed", BASE)
            result = http.get("/api/v1/results/job_00000000").json()
            assert contract.JobResult.model_validate(result).job_id == "job_00000000"
            assert http.get("/api/v1/status/job_00000009").json()["status"] == "failed"
            assert http.get("/api/v1/status/job_99999999").status_code == 404
            # A known id is not run again, however old.
            again = {"job_id": "job_00000001", "experiment_spec": experiment("memory_benchmark")}
            assert (
                http.post("/api/v1/jobs", json=again).json()["job_status"]["status"] == "completed"
            )
        if start == "second":
            # The index was built once, from the records, and reused at the next start.
            assert "indexed" not in agent.log()

    with (
        AgentProcess(crowded, settings=KEEP_ALL, log_path=tmp_path / "third.log") as agent,
        httpx.Client(base_url=agent.url, timeout=15) as http,
    ):
        fresh = submit(http, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
        wait_for_end(http, fresh)
        size, status = status_of(http)
        assert size < STATUS_BYTES
        assert [r.job_id for r in status.available_results[:2]] == [fresh, "job_running"]
        assert len(status.available_results) == 50


async def test_start_up_holds_only_a_few_records_in_memory(crowded: Path) -> None:
    runner = JobRunner(AgentSettings(data_dir=crowded, **KEEP_ALL))  # type: ignore[arg-type]
    runner.start()
    try:
        gc.collect()
        held = sum(isinstance(o, JobRecord) for o in gc.get_objects())
        assert held <= CACHED_RECORDS
        assert runner.store.count() >= RECORDS + 1  # every record is still on disk
        status = runner.agent_status()
        assert len(status.available_results) == 50
        assert len(status.model_dump_json()) < STATUS_BYTES
    finally:
        await runner.shutdown()


def test_records_past_their_retention_are_deleted_and_served_until_then(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    aged = [old_record(f"job_aged_{i}", now - timedelta(days=40 + i)) for i in range(3)]
    recent = [old_record(f"job_recent_{i}", now - timedelta(hours=10 - i)) for i in range(7)]
    data_dir = tmp_path / "data"
    write_data_dir(data_dir, aged + recent)
    settings = {
        "retention_days": "30",
        "retention_max_records": "5",
        "retention_check_interval": "0.5",
    }

    def on_disk() -> set[str]:
        return {p.stem for p in (data_dir / "jobs").glob("*.json")}

    with (
        AgentProcess(data_dir, settings=settings, log_path=tmp_path / "agent.log") as agent,
        httpx.Client(base_url=agent.url, timeout=15) as http,
    ):
        # Past 30 days, and beyond the newest five: deleted by the sweep at start.
        kept = {f"job_recent_{i}" for i in range(2, 7)}
        wait_until(lambda: on_disk() == kept, 10, what="the records past retention deleted")
        for job_id in ("job_aged_0", "job_recent_0", "job_recent_1"):
            assert http.get(f"/api/v1/status/{job_id}").status_code == 404
            assert http.get(f"/api/v1/results/{job_id}").status_code == 404
        for job_id in kept:
            assert http.get(f"/api/v1/results/{job_id}").json()["status"] == "completed"
        _, status = status_of(http)
        assert {r.job_id for r in status.available_results} == kept

        # A new job pushes the oldest kept one out at the next sweep.
        fresh = submit(http, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
        wait_for_end(http, fresh)
        newest = kept - {"job_recent_2"} | {fresh}
        wait_until(lambda: on_disk() == newest, 10, what="the oldest kept record deleted")
        assert http.get(f"/api/v1/results/{fresh}").status_code == 200
        assert "deleted 5 job records past their retention" in agent.log()


def test_a_damaged_index_is_rebuilt_from_the_records(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_data_dir(data_dir, [old_record("job_a", BASE), old_record("job_b", BASE.replace(hour=1))])
    (data_dir / "jobs.sqlite3").write_bytes(b"not a database at all" * 100)

    with (
        AgentProcess(data_dir, log_path=tmp_path / "agent.log") as agent,
        httpx.Client(base_url=agent.url, timeout=15) as http,
    ):
        _, status = status_of(http)
        assert [r.job_id for r in status.available_results] == ["job_b", "job_a"]
        assert "rebuilding it" in agent.log()
