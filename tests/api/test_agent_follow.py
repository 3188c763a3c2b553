"""Following jobs of real agents through the server: stage, progress and log lines while a job
runs (its status, the event stream, `ruckus jobs watch --logs`), logs that outlive the agent, and
a job that outlives its agent's crash (sent again, in its place, attempts recorded)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from common.models import JobInfo, JobStatusEnum
from tests.api.conftest import Stack, wait_job
from tests.support.processes import REPO, AgentProcess, free_port
from tests.support.stack import HttpService, ManagedProcess, wait_until

S = JobStatusEnum
# Long enough for an agent to restart: every agent call is tried for some 30 s.
PATIENT = {
    "RUCKUS_AGENT_RETRY_MAXIMUM_ATTEMPTS": "60",
    "RUCKUS_AGENT_RETRY_MAXIMUM_INTERVAL": "0.5",
}


class FollowStack:
    """A worker and two APIs on their own task queue: one sends a lost job again (the default
    of one retry), the other never does; both with callbacks on."""

    def __init__(self, stack: Stack) -> None:
        self.root = stack.root / f"follow-{uuid.uuid4().hex[:8]}"
        self.root.mkdir()
        queue = self.root.name
        cmd = [sys.executable, "-m", "ruckus.cli"]
        env = stack.env(RUCKUS_TASK_QUEUE=queue, RUCKUS_CALLBACK_SECRET="follow-secret", **PATIENT)
        self.worker = ManagedProcess([*cmd, "worker"], self.root / "worker.log", env)
        self.apis = []
        for name, retries in (("api", "1"), ("api-no-retries", "0")):
            port = free_port()
            api_env = env | {
                "RUCKUS_JOB_AGENT_LOST_RETRIES": retries,
                "RUCKUS_CALLBACK_BASE_URL": f"http://127.0.0.1:{port}",
            }
            args = [*cmd, "api", "--port", str(port)]
            self.apis.append(HttpService(args, port, self.root / f"{name}.log", api_env))
        self.api, self.api_no_retries = self.apis
        self.agents: list[AgentProcess] = []

    async def start(self) -> None:
        self.worker.start()
        await wait_until(lambda: "serving" in self.worker.output(), 60, what="the worker")
        for api in self.apis:
            await api.start_and_wait()

    async def agent(self, api: HttpService, name: str) -> AgentProcess:
        """A real agent that registers itself with `api` (so its callbacks go there)."""
        home = self.root / name
        home.mkdir()
        settings = {"server_url": api.url, "agent_id": name}
        agent = AgentProcess(home / "data", settings=settings, log_path=home / "agent.log")
        self.agents.append(agent)
        await asyncio.to_thread(agent.start)
        await registered(api, name)
        return agent

    def stop(self) -> None:
        for process in [*self.agents, *self.apis]:
            process.stop()
        self.worker.stop()


@pytest.fixture(scope="module")
async def follow(stack: Stack) -> AsyncIterator[FollowStack]:
    s = FollowStack(stack)
    await s.start()
    yield s
    s.stop()


async def registered(api: HttpService, agent_id: str) -> None:
    async def known() -> bool:
        async with httpx.AsyncClient(base_url=api.url, timeout=5) as http:
            return (await http.get(f"/api/v1/agents/{agent_id}/info")).status_code == 200

    await wait_until(known, 60, what=f"agent {agent_id} registered")


async def submit(http: httpx.AsyncClient, agent_id: str, **params: Any) -> JobInfo:
    """A compute job (numpy) with these params, through the API."""
    spec = {
        "id": f"exp-{uuid.uuid4().hex[:8]}",
        "name": "matmul",
        "model": "none",
        "task": {"name": "matmul", "type": "compute_benchmark", "params": params},
    }
    created = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
    assert created.status_code == 200, created.text
    body = {"experiment_id": spec["id"], "agent_id": agent_id}
    answer = await http.post("/api/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    return JobInfo.model_validate(answer.json())


async def whole_log(http: httpx.AsyncClient, job_id: str) -> str:
    text, offset = "", 0
    while True:
        stretch = (await http.get(f"/api/v1/jobs/{job_id}/logs", params={"offset": offset})).json()
        text += stretch["text"]
        if stretch["complete"]:
            return text
        assert stretch["next_offset"] > offset, stretch  # an ended job's log is all there
        offset = stretch["next_offset"]


async def events(api: HttpService, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's server-sent events, to the end of the stream."""
    found = []
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=None) as http,
        aconnect_sse(http, "GET", f"/api/v1/jobs/{job_id}/events") as source,
    ):
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            found.append((sse.event, json.loads(sse.data)))
    return found


async def watch(api: HttpService, job_id: str, http: httpx.AsyncClient) -> list[tuple[str, str]]:
    """`ruckus jobs watch JOB --logs`: each line it prints, with the job's status then."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ruckus.cli", "jobs", "watch", job_id, "--logs",
        cwd=REPO,
        env={"RUCKUS_SERVER_URL": api.url, "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    while line := await process.stdout.readline():
        job = (await http.get(f"/api/v1/jobs/{job_id}")).json()
        lines.append((line.decode().rstrip(), job["status"]["status"]))
    assert await process.wait() == 0, lines
    return lines


async def test_stage_progress_and_log_lines_reach_the_status_the_event_stream_and_the_cli(
    follow: FollowStack,
) -> None:
    api, agent_id = follow.api, f"follow-{uuid.uuid4().hex[:6]}"
    await follow.agent(api, agent_id)
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        params = {
            "matrix_sizes": [64, 128],
            "precision_types": ["fp32", "fp64"],
            "min_duration_seconds": 2,
            "runs": 3,
        }
        job = await submit(http, agent_id, **params)
        streamed = asyncio.create_task(events(api, job.job_id))
        printed = asyncio.create_task(watch(api, job.job_id, http))
        seen: list[dict[str, Any]] = []

        async def ended() -> bool:
            status = (await http.get(f"/api/v1/jobs/{job.job_id}")).json()["status"]
            if status["status"] == "running":
                seen.append(status)
            return S(status["status"]).is_terminal

        await wait_until(ended, 90, interval=0.1, what="the job to end")
        final = await wait_job(http, job.job_id, S.COMPLETED)
        stream, lines = await asyncio.wait_for(asyncio.gather(streamed, printed), 60)
        log = await whole_log(http, job.job_id)
        result = (await http.get(f"/api/v1/results/{job.job_id}")).json()["result"]

    # The job's status through the API: its stage and a growing fraction while it ran.
    stages = {s["stage"].rsplit(", ", 1)[-1] for s in seen if s.get("stage")}
    assert {"run 1 of 3", "run 3 of 3"} <= stages, stages
    fractions = [s["progress"] for s in seen if s.get("progress") is not None]
    assert fractions == sorted(fractions) and fractions[0] < 0.5 < fractions[-1] <= 1
    assert final.status.attempt == 1 and result["attempt"] == 1

    # The event stream: status events with the stage, log lines before the end, then the end.
    names = [name for name, _ in stream]
    assert names[-1] == "end" and stream[-1][1]["status"]["status"] == "completed"
    staged = [e for name, e in stream if name == "status" and e["status"].get("stage")]
    assert len({e["status"]["stage"] for e in staged}) >= 2
    logged = [e["text"] for name, e in stream if name == "log"]
    assert "".join(logged) == log  # every line, once, in order
    first_result = next(i for i, (n, e) in enumerate(stream) if "GFLOP/s" in e.get("text", ""))
    # It came while the job ran: the job's running status changed after it.
    later = [e for n, e in stream[first_result:] if n == "status"]
    assert any(e["status"]["status"] == "running" for e in later)

    # `ruckus jobs watch --logs` printed log lines while the job ran, and the results after.
    running_lines = [text for text, status in lines if status == "running"]
    assert any("GFLOP/s best" in text for text in running_lines), lines
    assert any("next: `ruckus results show" in text for text, _ in lines)

    # The log the server keeps: the agent's notes and every line of the task.
    assert "agent: accepted: the compute_benchmark task" in log.splitlines()[0]
    assert sum("GFLOP/s best" in line for line in log.splitlines()) == 4 * 3
    assert "agent: ended completed" in log.splitlines()[-1]


async def test_a_jobs_log_is_read_through_the_server_after_its_agent_is_gone(
    follow: FollowStack,
) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    agent = await follow.agent(follow.api, name)
    async with httpx.AsyncClient(base_url=follow.api.url, timeout=30) as http:
        job = await submit(http, name, matrix_sizes=[32], precision_types=["fp32"])
        await wait_job(http, job.job_id, S.COMPLETED, timeout=60)
        kept = await whole_log(http, job.job_id)
        agent.kill()
        shutil.rmtree(agent.data_dir)  # nothing of the agent is left

        again = (await http.get(f"/api/v1/jobs/{job.job_id}/logs")).json()
        assert again["complete"] and again["text"] == kept
        assert "matmul 32 fp32: " in kept and "agent: ended completed" in kept
        # Read in stretches from any offset, cut at a character.
        middle = len(kept.encode()) // 2
        rest = await http.get(f"/api/v1/jobs/{job.job_id}/logs", params={"offset": middle})
        assert kept.encode()[middle:].decode(errors="ignore").endswith(rest.json()["text"])


async def crash_and_restart(agent: AgentProcess) -> None:
    """SIGKILL the agent, then start it again on the same port and data dir."""
    agent.kill()
    await asyncio.to_thread(agent.start)


async def running_on_agent(agent: AgentProcess, job_id: str) -> None:
    """Wait until the agent runs the job and its task has said what it does."""

    async def staged() -> bool:
        async with httpx.AsyncClient(base_url=agent.url, timeout=5) as http:
            status = (await http.get(f"/api/v1/status/{job_id}")).json()
        return status.get("status") == "running" and bool(status.get("stage"))

    await wait_until(staged, 60, what=f"job {job_id} running on its agent")


async def test_a_job_outlives_its_agents_crash_and_keeps_its_place(follow: FollowStack) -> None:
    name = f"crash-{uuid.uuid4().hex[:6]}"
    agent = await follow.agent(follow.api, name)
    async with httpx.AsyncClient(base_url=follow.api.url, timeout=30) as http:
        lost = await submit(
            http, name, matrix_sizes=[64], precision_types=["fp32"], min_duration_seconds=4
        )
        await running_on_agent(agent, lost.job_id)
        behind = await submit(http, name, matrix_sizes=[32], precision_types=["fp32"])
        await wait_job(http, behind.job_id, S.QUEUED)

        await crash_and_restart(agent)

        done = await wait_job(http, lost.job_id, S.COMPLETED, timeout=90)
        await wait_job(http, behind.job_id, S.COMPLETED, timeout=60)
        results = {
            job_id: (await http.get(f"/api/v1/results/{job_id}")).json()["result"]
            for job_id in (lost.job_id, behind.job_id)
        }
        log = await whole_log(http, lost.job_id)

    assert done.status.attempt == 2 and results[lost.job_id]["attempt"] == 2
    assert results[behind.job_id]["attempt"] == 1
    # Run again to its end before the job behind it started: one at a time, in order.
    first, second = results[lost.job_id], results[behind.job_id]
    assert first["completed_at"] <= second["started_at"]
    assert first["duration_seconds"] >= 4  # the whole job, not what was left of it
    accepted = [line for line in log.splitlines() if "agent: accepted" in line]
    assert len(accepted) == 2 and "attempt 2, sent again" in accepted[1]
    assert "the agent restarted while this job was running" in log


async def test_with_no_retries_a_job_its_agent_lost_fails(follow: FollowStack) -> None:
    name = f"no-retry-{uuid.uuid4().hex[:6]}"
    agent = await follow.agent(follow.api_no_retries, name)
    async with httpx.AsyncClient(base_url=follow.api_no_retries.url, timeout=30) as http:
        job = await submit(
            http, name, matrix_sizes=[64], precision_types=["fp32"], min_duration_seconds=30
        )
        await running_on_agent(agent, job.job_id)
        await crash_and_restart(agent)

        failed = await wait_job(http, job.job_id, S.FAILED, timeout=60)
        assert failed.status.error_type == "AgentRestarted"
        assert "restarted while this job was running" in failed.status.message
        assert failed.status.attempt == 1
        async with httpx.AsyncClient(base_url=agent.url, timeout=5) as on_agent:
            # Not sent again: the agent holds it as it left it.
            status = (await on_agent.get(f"/api/v1/status/{job.job_id}")).json()
        assert (status["status"], status["attempt"]) == ("failed", 1)
