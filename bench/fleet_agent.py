"""Many agents in one process, each at its own path, whose jobs run until told to end.

`python -m bench.fleet_agent --port P --agents N` serves agent i at `http://127.0.0.1:P/a/<i>`,
each speaking the agent protocol the server uses (info, status, execute, job status, results,
cancel) and, when its job came with a callback URL, posting the signed end-of-job notification
there. A job runs for the agent's `seconds`, or with `seconds` unset until `/bench/finish`.
`/bench/log` says when each job arrived, when each status poll came and when the job ended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import time
from datetime import UTC, datetime

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from common.event_loop import run
from common.models import (
    AgentInfo,
    AgentInfoResponse,
    AgentStatus,
    AgentStatusEnum,
    ExecuteJobRequest,
    ExecuteJobResponse,
    JobNotification,
    JobStatus,
    JobStatusEnum,
)

NOTIFY_TIMEOUT = 10.0


class FleetJob(BaseModel):
    """One job as an agent of the fleet saw it (epoch seconds)."""

    agent: int
    experiment_id: str
    received: float
    polls: list[float] = Field(default_factory=list)
    finished: float | None = None
    callback_urls: list[str] = Field(default_factory=list)
    notified: bool | None = None


class Mode(BaseModel):
    """How agents behave: `seconds` a job runs (None: until /bench/finish), `notify` its end."""

    seconds: float | None = None
    notify: bool = True
    # Only this agent; None: every agent.
    agent: int | None = None


class Finish(BaseModel):
    """End every running job, their ends spread evenly over `spread` seconds in random order."""

    spread: float = Field(default=0.0, ge=0)


class Fleet:
    """The agents' state: their settings, their jobs, the job each one runs."""

    def __init__(self, agents: int, prefix: str, seconds: float | None, notify: bool) -> None:
        self.prefix = prefix
        self.agents = agents
        self.seconds: list[float | None] = [seconds] * agents
        self.notify = [notify] * agents
        self.running: list[str | None] = [None] * agents
        self.jobs: dict[str, FleetJob] = {}
        self.started = time.time()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def agent_id(self, i: int) -> str:
        if not 0 <= i < self.agents:
            raise HTTPException(404, f"no agent {i}")
        return f"{self.prefix}-{i}"

    def execute(self, i: int, request: ExecuteJobRequest) -> None:
        job_id = request.job_id
        if job_id in self.jobs:  # sent again: never run twice
            return
        urls = request.callback_urls or ([request.callback_url] if request.callback_url else [])
        self.jobs[job_id] = FleetJob(
            agent=i,
            experiment_id=request.experiment_spec.id or "",
            received=time.time(),
            callback_urls=urls,
        )
        self.running[i] = job_id
        seconds = self.seconds[i]
        if seconds is not None:
            self._timers[job_id] = asyncio.get_running_loop().call_later(seconds, self.end, job_id)

    def end(self, job_id: str) -> None:
        """The job is done now; its agent is idle and tells the server when it was asked to."""
        job = self.jobs[job_id]
        if job.finished is not None:
            return
        self._timers.pop(job_id, None)
        job.finished = time.time()
        if self.running[job.agent] == job_id:
            self.running[job.agent] = None
        if self.notify[job.agent] and job.callback_urls:
            task = asyncio.get_running_loop().create_task(self._notify(job_id, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def finish_all(self, spread: float) -> int:
        """Schedule the end of every running job over `spread` seconds; how many there were."""
        running = [j for j in self.running if j is not None]
        random.shuffle(running)
        loop = asyncio.get_running_loop()
        for k, job_id in enumerate(running):
            timer = self._timers.pop(job_id, None)
            if timer is not None:
                timer.cancel()
            delay = spread * k / len(running)
            self._timers[job_id] = loop.call_later(delay, self.end, job_id)
        return len(running)

    def status_of(self, job_id: str) -> JobStatus:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"unknown job {job_id}")
        job.polls.append(time.time())
        if job.finished is None:
            return JobStatus(status=JobStatusEnum.RUNNING, message="running")
        at = datetime.fromtimestamp(job.finished, UTC)
        return JobStatus(status=JobStatusEnum.COMPLETED, timestamp=at, message="done")

    async def _notify(self, job_id: str, job: FleetJob) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=NOTIFY_TIMEOUT)
        assert job.finished is not None
        at = datetime.fromtimestamp(job.finished, UTC)
        status = JobStatus(status=JobStatusEnum.COMPLETED, timestamp=at, message="done")
        body = JobNotification(job_id=job_id, status=status).model_dump(mode="json")
        job.notified = False
        for url in job.callback_urls:
            # A lost notification only delays the end until the next poll: as on a real agent.
            with contextlib.suppress(httpx.HTTPError):
                if (await self._client.post(url, json=body)).status_code < 500:
                    job.notified = True
                    return

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=NOTIFY_TIMEOUT)
        if self._client is not None:
            await self._client.aclose()


def build_app(fleet: Fleet) -> FastAPI:
    app = FastAPI()

    @app.get("/a/{i}/health")
    async def health(i: int) -> dict[str, str]:
        return {"status": "healthy", "version": "fleet", "agent_id": fleet.agent_id(i)}

    @app.get("/a/{i}/api/v1/info")
    async def info(i: int) -> AgentInfoResponse:
        return AgentInfoResponse(agent_info=AgentInfo(agent_id=fleet.agent_id(i)))

    @app.get("/a/{i}/api/v1/status")
    async def status(i: int) -> AgentStatus:
        agent_id = fleet.agent_id(i)
        running = fleet.running[i]
        return AgentStatus(
            agent_id=agent_id,
            status=AgentStatusEnum.ACTIVE if running else AgentStatusEnum.IDLE,
            running_jobs=[running] if running else [],
            current_job_id=running,
            uptime_seconds=time.time() - fleet.started,
        )

    @app.post("/a/{i}/api/v1/jobs")
    async def execute(i: int, request: ExecuteJobRequest) -> ExecuteJobResponse:
        fleet.agent_id(i)
        known = fleet.jobs.get(request.job_id)
        if known is None and fleet.running[i] is not None:
            raise HTTPException(409, f"agent busy with job {fleet.running[i]}")
        fleet.execute(i, request)
        return ExecuteJobResponse(job_id=request.job_id)

    @app.get("/a/{i}/api/v1/status/{job_id}")
    async def job_status(i: int, job_id: str) -> JobStatus:
        return fleet.status_of(job_id)

    @app.get("/a/{i}/api/v1/results/{job_id}")
    async def results(i: int, job_id: str) -> dict[str, object]:
        job = fleet.jobs.get(job_id)
        if job is None or job.finished is None:
            raise HTTPException(404, f"no results for job {job_id}")
        return {
            "job_id": job_id,
            "experiment_id": job.experiment_id,
            "status": "completed",
            "metrics": {"seconds": job.finished - job.received},
        }

    @app.delete("/a/{i}/api/v1/jobs/{job_id}")
    async def cancel(i: int, job_id: str) -> dict[str, str]:
        if job_id in fleet.jobs:
            fleet.end(job_id)
        return {"job_id": job_id, "status": "cancelled"}

    @app.post("/bench/mode")
    async def set_mode(mode: Mode) -> Mode:
        chosen = range(fleet.agents) if mode.agent is None else [mode.agent]
        for i in chosen:
            fleet.seconds[i] = mode.seconds
            fleet.notify[i] = mode.notify
        return mode

    @app.post("/bench/finish")
    async def finish(request: Finish) -> dict[str, int]:
        return {"ending": fleet.finish_all(request.spread)}

    @app.get("/bench/log")
    async def log() -> dict[str, FleetJob]:
        return fleet.jobs

    app.router.on_shutdown.append(fleet.aclose)
    return app


def server(fleet: Fleet) -> uvicorn.Server:
    """The fleet's HTTP server; it serves on a socket its caller bound (see `serve`)."""
    config = uvicorn.Config(
        build_app(fleet),
        log_level="warning",
        access_log=False,
        # The fleet's agents share one process: a thousand pollers must not wait on a backlog.
        backlog=4096,
        timeout_keep_alive=120,
    )
    return uvicorn.Server(config)


async def serve(fleet: Fleet, sock: socket.socket) -> None:
    """Serve on a socket already bound: a free port is taken without a race."""
    await server(fleet).serve(sockets=[sock])


def bound_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--prefix", default="fleet")
    parser.add_argument("--seconds", type=float, default=None, help="unset: until finished")
    parser.add_argument("--no-notify", action="store_true")
    args = parser.parse_args()
    fleet = Fleet(args.agents, args.prefix, args.seconds, not args.no_notify)
    run(serve(fleet, bound_socket(args.port)))


if __name__ == "__main__":
    main()
