"""Our agent's answers parsed with strict models of the contract (tests/agent/contract.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from common.agent_client import AgentUtility
from common.models import AgentStatus as OurAgentStatus
from tests.agent import contract
from tests.agent.jobs import experiment, job_status, long_compute, submit, wait_for_end
from tests.agent.old_records import AGENT_ID, BASE, old_record, write_data_dir
from tests.support.processes import AgentProcess, wait_until


def test_health_info_and_status_are_in_the_contracts_shapes(client: httpx.Client) -> None:
    health = contract.Health.model_validate(client.get("/health").json())
    info = contract.AgentInfoResponse.model_validate(client.get("/api/v1/info").json())
    status = contract.AgentStatus.model_validate(client.get("/api/v1/status").json())

    assert health.status == "healthy"
    assert health.agent_id == info.agent_info.agent_id == status.agent_id
    system = info.agent_info.system_info
    assert system.cpu.cores_logical >= 1
    assert 0 < system.system.disk_available_gb <= system.system.disk_total_gb
    assert "numpy" in {f.name for f in system.frameworks}


def test_job_status_and_results_are_in_the_contracts_shapes(client: httpx.Client) -> None:
    running = submit(client, long_compute())
    during = contract.JobStatus.model_validate(job_status(client, running))
    assert during.status == "running" and during.job_id == running
    assert during.started_at is not None and during.completed_at is None
    assert client.delete(f"/api/v1/jobs/{running}").status_code == 200

    done = submit(client, experiment("memory_benchmark", {"test_sizes_mb": [1]}))
    wait_for_end(client, done)
    after = contract.JobStatus.model_validate(job_status(client, done))
    result = contract.JobResult.model_validate(client.get(f"/api/v1/results/{done}").json())
    assert after.status == result.status == "completed"
    assert (after.started_at, after.completed_at) == (result.started_at, result.completed_at)
    assert after.timestamp is not None and after.timestamp >= result.completed_at

    refused = submit(client, experiment("memory_benchmark", {"test_sizes_mb": [-1]}))
    assert wait_for_end(client, refused)["status"] == "failed"
    contract.JobResult.model_validate(client.get(f"/api/v1/results/{refused}").json())

    status = contract.AgentStatus.model_validate(client.get("/api/v1/status").json())
    newest = {r.job_id: r.result_type for r in status.available_results[:3]}
    assert newest == {refused: "execution", done: "success", running: "cancelled"}
    ends = [r.completed_at for r in status.available_results]
    assert ends == sorted(ends, reverse=True)


def test_a_restarted_agent_with_old_records_answers_a_status_an_existing_server_reads(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    ends = [BASE.replace(hour=h) for h in (1, 3, 2)]
    records = [old_record(f"job_old_{i}", end) for i, end in enumerate(ends)]
    records.append(old_record("job_old_failed", BASE.replace(hour=4), status="failed"))
    records.append(old_record("job_old_running", BASE.replace(hour=5), status="running"))
    write_data_dir(data_dir, records)

    with AgentProcess(data_dir, log_path=tmp_path / "agent.log") as agent:
        answer = httpx.get(agent.url + "/api/v1/status").json()
        contract.ExistingServerAgentStatus.model_validate(answer)
        status = contract.AgentStatus.model_validate(answer)
        assert status.agent_id == AGENT_ID
        listed = [(r.job_id, r.result_type) for r in status.available_results]
        # The job that was running when the old agent stopped ended failed at this start.
        assert listed == [
            ("job_old_running", "execution"),
            ("job_old_failed", "execution"),
            ("job_old_1", "success"),
            ("job_old_2", "success"),
            ("job_old_0", "success"),
        ]
        assert status.available_results[1].completed_at == BASE.replace(hour=4)

        old = contract.JobStatus.model_validate(
            httpx.get(agent.url + "/api/v1/status/job_old_0").json()
        )
        assert (old.status, old.completed_at) == ("completed", BASE.replace(hour=1))
        result = httpx.get(agent.url + "/api/v1/results/job_old_0").json()
        assert contract.JobResult.model_validate(result).metrics == {"peak_sequential_gbps": 9.5}


def test_our_server_reads_both_shapes_of_available_results() -> None:
    older = {"agent_id": "a", "status": "idle", "available_results": ["job_1", "job_2"]}
    assert [r.job_id for r in OurAgentStatus.model_validate(older).available_results] == [
        "job_1",
        "job_2",
    ]
    entry = {"job_id": "job_3", "completed_at": "2026-01-01T00:00:00Z", "result_type": "success"}
    # An entry in neither shape is left out rather than making the whole status unreadable.
    mixed = {"agent_id": "a", "status": "idle", "available_results": [entry, 7, {"x": 1}]}
    (only,) = OurAgentStatus.model_validate(mixed).available_results
    assert (only.job_id, only.result_type) == ("job_3", "success")
    assert only.completed_at == datetime.fromisoformat("2026-01-01T00:00:00+00:00")


async def test_our_server_reads_this_agents_status(agent: AgentProcess) -> None:
    utility = AgentUtility(timeout=10)
    try:
        status = await utility.get_agent_status(agent.url)
    finally:
        await utility.aclose()
    answer = await asyncio.to_thread(lambda: httpx.get(agent.url + "/api/v1/status").json())
    assert [r.job_id for r in status.available_results] == [
        r["job_id"] for r in answer["available_results"]
    ]


@pytest.fixture(autouse=True)
def _idle_agent_for_jobs(request: pytest.FixtureRequest) -> None:
    """Tests that take `client` get an idle agent from it; the others need nothing."""
    if "client" in request.fixturenames:
        client: httpx.Client = request.getfixturevalue("client")
        wait_until(lambda: client.get("/api/v1/status").json()["status"] == "idle", 10)
