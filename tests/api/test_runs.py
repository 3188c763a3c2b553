"""Runs over real agents: children of the run in Temporal, the comparison, failure, cancel."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from common.models import JobStatusEnum
from tests.api.conftest import Stack, register, wait_job
from tests.api.test_comparison import check_report_page, real_agent
from tests.support.stack import FakeAgent, HttpService, wait_until

REPO = Path(__file__).resolve().parents[2]
SIZES = [32, 48]


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("runs")
    await process.start_and_wait()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def three_agents(stack: Stack, api: HttpService) -> AsyncIterator[list[str]]:
    """Three real agents, registered; their ids."""
    agents = [real_agent(stack, f"run-{i}-{uuid.uuid4().hex[:6]}") for i in (1, 2, 3)]
    for agent in agents:
        await agent.start_and_wait()
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            yield [await register(http, a.url) for a in agents]
    finally:
        for agent in agents:
            agent.stop()


@pytest.fixture
async def http(api: HttpService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


async def create_experiment(http: httpx.AsyncClient, **params: Any) -> str:
    experiment_id = f"run-exp-{uuid.uuid4().hex[:8]}"
    spec = {
        "id": experiment_id,
        "name": "matmul across agents",
        "model": "none",
        "task": {
            "name": "matmul",
            "type": "compute_benchmark",
            "params": {"matrix_sizes": SIZES, "precision_types": ["fp32"], **params},
        },
    }
    created = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
    assert created.status_code == 200, created.text
    return experiment_id


async def start(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_run(http: httpx.AsyncClient, run_id: str, timeout: float = 180) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        run = (await http.get(f"/api/v1/runs/{run_id}")).json()
        return run if run["status"] != "running" else None

    return dict(await wait_until(ended, timeout, interval=0.3, what=f"run {run_id} to end"))


async def test_a_run_over_three_agents_with_repeats(
    stack: Stack, http: httpx.AsyncClient, three_agents: list[str], tmp_path: Path
) -> None:
    experiment_id = await create_experiment(http, runs=3)
    run = await start(http, experiment_id=experiment_id, agents=three_agents, repeats=2)
    run_id = run["run_id"]
    assert run_id.startswith("run_") and len(run_id) == 16
    assert (run["experiment_id"], run["agents"], run["repeats"], run["status"]) == (
        experiment_id, three_agents, 2, "running"
    )  # fmt: skip
    # Agent then repeat order, each job on its agent.
    assert [j["agent_id"] for j in run["jobs"]] == [a for a in three_agents for _ in range(2)]
    job_ids = [j["job_id"] for j in run["jobs"]]
    assert len(set(job_ids)) == 6

    ended = await wait_run(http, run_id)
    assert ended["status"] == "completed" and ended["ended_time"] is not None
    assert [j["job_id"] for j in ended["jobs"]] == job_ids
    assert {j["status"]["status"] for j in ended["jobs"]} == {"completed"}
    # Ruckus agents keep logs: each job's is saved with its end, as for a single job.
    for job_id in job_ids:
        saved = (await http.get(f"/api/v1/jobs/{job_id}/logs")).json()
        assert saved["complete"] and "agent: ended completed" in saved["text"], saved

    # In Temporal: every job is a child of the run, and RuckusRunId finds them all.
    client = await stack.temporal.client()
    for job_id in job_ids:
        described = await client.get_workflow_handle(job_id).describe()
        assert described.parent_id == run_id
        assert described.status is WorkflowExecutionStatus.COMPLETED
    run_described = await client.get_workflow_handle(run_id).describe()
    assert run_described.status is WorkflowExecutionStatus.COMPLETED

    async def all_found() -> bool:
        listed = client.list_workflows(f'RuckusRunId="{run_id}"')
        return {w.id async for w in listed} == {run_id, *job_ids}

    await wait_until(all_found, 30, what="the run and its jobs by RuckusRunId")

    # The comparison's statistics are those of the stored results.
    comparison = (await http.get(f"/api/v1/runs/{run_id}/comparison")).json()
    assert [r["key"] for r in comparison["rows"]] == three_agents
    names = [m["name"] for m in comparison["metrics"]]
    assert names == [f"gflops_fp32_{n}" for n in SIZES] + ["peak_gflops"]
    means: dict[str, list[float]] = {}
    for row in comparison["rows"]:
        assert row["job_ids"] == [j["job_id"] for j in ended["jobs"] if j["agent_id"] == row["key"]]
        results = [
            (await http.get(f"/api/v1/results/{job_id}")).json()["result"]
            for job_id in row["job_ids"]
        ]
        for name in names:
            values = [v for r in results for v in r["metrics"]["repeats"]["raw"][name][1:]]
            cell = row["cells"][name]
            assert cell["n"] == len(values) == 4
            assert cell["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert (cell["min"], cell["max"]) == (min(values), max(values))
            assert cell["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            means.setdefault(name, []).append(cell["mean"])
    for row in comparison["rows"]:
        for name in names:
            best = max(means[name])
            assert row["cells"][name]["ratio_to_best"] == pytest.approx(
                row["cells"][name]["mean"] / best
            )

    # The report, as the API serves it, in a real browser.
    page_url = f"{str(http.base_url).rstrip('/')}/api/v1/runs/{run_id}/report"
    await check_report_page(page_url, comparison, tmp_path / "run-report.png")

    # The CLI reads the same run.
    shown = ruckus(stack, http, "compare", run_id, "--json")
    assert json.loads(shown.stdout) == comparison
    listed = ruckus(stack, http, "runs", "list")
    assert run_id in listed.stdout and experiment_id in listed.stdout
    detail = ruckus(stack, http, "runs", "show", run_id)
    assert all(job_id in detail.stdout for job_id in job_ids)


async def test_a_run_with_a_failing_agent_ends_and_shows_the_failure(
    stack: Stack, http: httpx.AsyncClient, three_agents: list[str]
) -> None:
    failing = FakeAgent(stack.root, f"failing-{uuid.uuid4().hex[:6]}")
    await failing.start_and_wait()
    try:
        await failing.control(final_status="failed")
        failing_id = await register(http, failing.url)
        experiment_id = await create_experiment(http)
        run = await start(http, experiment_id=experiment_id, agents=[three_agents[0], failing_id])
        ended = await wait_run(http, run["run_id"])
        assert ended["status"] == "completed"
        statuses = {j["agent_id"]: j["status"]["status"] for j in ended["jobs"]}
        assert statuses == {three_agents[0]: "completed", failing_id: "failed"}
        comparison = (await http.get(f"/api/v1/runs/{run['run_id']}/comparison")).json()
        good, bad = comparison["rows"]
        assert all(cell is not None for cell in good["cells"].values())
        failed_job = next(j for j in ended["jobs"] if j["agent_id"] == failing_id)
        assert bad["failed"] == [
            {
                "job_id": failed_job["job_id"],
                "status": "failed",
                "error": failed_job["status"]["message"],
            }
        ]
        assert set(bad["cells"].values()) == {None}
    finally:
        failing.stop()


async def test_cancelling_a_run_cancels_its_unfinished_jobs(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    slow = FakeAgent(stack.root, f"slow-{uuid.uuid4().hex[:6]}")
    await slow.start_and_wait()
    try:
        await slow.control(job_duration=None)  # runs until told otherwise
        slow_id = await register(http, slow.url)
        experiment_id = await create_experiment(http)
        run = await start(http, experiment_id=experiment_id, agents=[slow_id], repeats=2)
        job_ids = [j["job_id"] for j in run["jobs"]]

        async def one_running() -> list[str]:
            ran = await slow.executed()
            return ran if len(ran) == 1 else []

        # One job holds the agent, the other waits in its queue (whichever joined first).
        (first,) = await wait_until(one_running, 60, what="one of the run's jobs to run")
        (second,) = set(job_ids) - {first}
        await wait_job(http, first, JobStatusEnum.RUNNING, JobStatusEnum.ASSIGNED, timeout=30)

        cancelled = await http.delete(f"/api/v1/runs/{run['run_id']}")
        assert cancelled.status_code == 204, cancelled.text
        ended = await wait_run(http, run["run_id"], timeout=60)
        assert ended["status"] == "cancelled" and ended["ended_time"] is not None
        assert [j["status"]["status"] for j in ended["jobs"]] == ["cancelled", "cancelled"]
        assert first in [e["job_id"] for e in await slow.log() if e["call"] == "cancel"]
        assert second not in await slow.executed()  # it left the queue, never sent

        again = await http.delete(f"/api/v1/runs/{run['run_id']}")
        assert again.status_code == 409 and "already ended" in again.json()["detail"]
        comparison = (await http.get(f"/api/v1/runs/{run['run_id']}/comparison")).json()
        assert [f["status"] for f in comparison["rows"][0]["failed"]] == ["cancelled"] * 2
    finally:
        slow.stop()


async def test_the_cli_starts_a_run_and_watches_it_to_its_comparison(
    stack: Stack, http: httpx.AsyncClient, three_agents: list[str], tmp_path: Path
) -> None:
    experiment_id = await create_experiment(http)
    agents = [arg for agent_id in three_agents[:2] for arg in ("--agent", agent_id)]
    started = ruckus(
        stack, http, "runs", "start", experiment_id, *agents, "--repeats", "2", "--watch"
    )
    assert "comparison by agent" in started.stdout
    for text in (*three_agents[:2], "peak_gflops (GFLOP/s)", "2/2"):
        assert text in started.stdout, (text, started.stdout)
    (run,) = (await http.get("/api/v1/runs", params={"experiment_id": experiment_id})).json()[
        "runs"
    ]
    assert run["status"] == "completed" and len(run["jobs"]) == 4
    out = tmp_path / "run.csv"
    ruckus(stack, http, "report", run["run_id"], "-o", str(out))
    assert {line.split(",")[0] for line in out.read_text().splitlines()[1:]} == set(
        three_agents[:2]
    )


async def test_bad_input_starts_nothing(http: httpx.AsyncClient, three_agents: list[str]) -> None:
    experiment_id = await create_experiment(http)
    before = (await http.get("/api/v1/runs", params={"limit": 500})).json()["runs"]
    jobs_before = (await http.get("/api/v1/jobs", params={"experiment_id": experiment_id})).json()
    for body, status, words in [
        ({"experiment_id": "no-such-exp"}, 404, "no-such-exp"),
        ({"experiment_id": experiment_id, "agents": ["no-such-agent"]}, 404, "no-such-agent"),
        (
            {"experiment_id": experiment_id, "selector": {"labels": {"gpu": "h100"}}},
            422,
            f"agent {three_agents[0]} does not have the labels gpu=h100",
        ),
        ({"experiment_id": experiment_id, "repeats": 0}, 422, "repeats"),
        ({"experiment_id": experiment_id, "repeats": 21}, 422, "repeats"),
        ({"experiment_id": experiment_id, "agents": []}, 422, "agents"),
        (
            {"experiment_id": experiment_id, "agents": [three_agents[0]] * 2},
            422,
            "each agent once",
        ),
    ]:
        response = await http.post("/api/v1/runs", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in json.dumps(response.json()), (words, response.text)
    # An experiment no agent here can run: each named agent answers why.
    gpu_experiment = f"gpu-{uuid.uuid4().hex[:8]}"
    spec = {
        "id": gpu_experiment,
        "name": "needs a GPU",
        "model": "none",
        "framework": {"name": "pytorch"},
        "task": {"name": "gemm", "type": "gpu_benchmark", "params": {"matrix_sizes": [64]}},
    }
    created = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
    assert created.status_code == 200, created.text
    refused = await http.post(
        "/api/v1/runs", json={"experiment_id": gpu_experiment, "agents": three_agents}
    )
    assert refused.status_code == 422, refused.text
    assert [(e["loc"], e["input"]) for e in refused.json()["detail"]] == [
        (["body", "agents"], agent_id) for agent_id in three_agents
    ]
    assert all("has no GPU" in e["msg"] for e in refused.json()["detail"]), refused.text
    assert (await http.get("/api/v1/runs", params={"limit": 500})).json()["runs"] == before
    jobs_after = (await http.get("/api/v1/jobs", params={"experiment_id": experiment_id})).json()
    assert jobs_after == jobs_before == {"jobs": {}}

    unknown = "run_000000000000"
    for method, path in [
        ("GET", f"/api/v1/runs/{unknown}"),
        ("DELETE", f"/api/v1/runs/{unknown}"),
        ("GET", f"/api/v1/runs/{unknown}/comparison"),
        ("GET", f"/api/v1/runs/{unknown}/report"),
    ]:
        response = await http.request(method, path)
        assert response.status_code == 404 and unknown in response.json()["detail"], path
    assert (await http.get("/api/v1/runs/not-a-run")).status_code == 422


async def test_a_retried_submission_is_the_same_run(
    http: httpx.AsyncClient, three_agents: list[str]
) -> None:
    experiment_id = await create_experiment(http)
    body = {"experiment_id": experiment_id, "agents": three_agents[:1]}
    headers = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first = await http.post("/api/v1/runs", json=body, headers=headers)
    second = await http.post("/api/v1/runs", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["run_id"] == second.json()["run_id"]
    runs = (await http.get("/api/v1/runs", params={"experiment_id": experiment_id})).json()
    assert [r["run_id"] for r in runs["runs"]] == [first.json()["run_id"]]
    await wait_run(http, first.json()["run_id"])


def ruckus(stack: Stack, http: httpx.AsyncClient, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={"RUCKUS_SERVER_URL": str(http.base_url), "COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done
