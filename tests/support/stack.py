"""Real processes for tests: the Temporal dev server, agents and workers, with deadlines."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from ruckus.temporal_server import dev_server_command
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]


async def wait_until(
    condition: Callable[[], Any | Awaitable[Any]],
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        except Exception as err:  # keep waiting; report the last error on timeout
            last_error = err
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from last_error
        await asyncio.sleep(interval)


# Every child started here: whatever a failed fixture left running dies with the test process.
_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _kill_leftovers() -> None:
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()


class ManagedProcess:
    """A child process with its output in a log file, stopped or killed on request."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.cmd = cmd
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO
        )
        _STARTED.append(self.proc)
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class TemporalDevServer(ManagedProcess):
    """`temporal server start-dev` on a free port, persisting to a file so it can restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.db_file = workdir / "temporal.db"
        super().__init__(
            dev_server_command(db_file=self.db_file, port=self.port),
            workdir / "temporal.log",
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start_and_wait(self, timeout: float = 60.0) -> None:
        self.start()

        async def connects() -> bool:
            assert self.alive(), f"temporal dev server exited:\n{self.output()[-2000:]}"
            client = await Client.connect(self.address)
            await client.workflow_service.get_system_info(
                __import__(
                    "temporalio.api.workflowservice.v1", fromlist=["x"]
                ).GetSystemInfoRequest()
            )
            return True

        try:
            await wait_until(connects, timeout, interval=0.2, what="the Temporal dev server")
        except BaseException:
            self.stop()  # a server that never became ready must not outlive the test
            raise

    async def client(self) -> Client:
        return await Client.connect(self.address, data_converter=pydantic_data_converter)


class HttpService(ManagedProcess):
    """A process serving HTTP on `port`, healthy when GET /health answers 200."""

    def __init__(
        self, cmd: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
    ):
        super().__init__(cmd, log_path, env)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start_and_wait(self, timeout: float = 30.0) -> None:
        self.start()

        async def healthy() -> bool:
            assert self.alive(), f"{self.cmd[:3]} exited:\n{self.output()[-2000:]}"
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(self.url + "/health")).status_code == 200

        try:
            await wait_until(healthy, timeout, interval=0.1, what=f"{self.url}/health")
        except BaseException:
            self.stop()  # a process that never became healthy must not outlive the test
            raise


class FakeAgent(HttpService):
    """The controllable agent of tests/support/fake_agent.py."""

    def __init__(self, workdir: Path, agent_id: str) -> None:
        port = free_port()
        cmd = [sys.executable, "-m", "tests.support.fake_agent", "--port", str(port)]
        super().__init__([*cmd, "--agent-id", agent_id], port, workdir / f"{agent_id}.log")
        self.agent_id = agent_id

    async def control(self, **behaviour: Any) -> None:
        async with httpx.AsyncClient() as http:
            (await http.post(self.url + "/control", json=behaviour)).raise_for_status()

    async def finish(self, job_id: str, status: str = "completed") -> None:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.url}/control/finish/{job_id}", params={"status": status})
            r.raise_for_status()

    async def log_line(self, job_id: str, line: str) -> None:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.url}/control/log/{job_id}", params={"line": line})
            r.raise_for_status()

    async def restart(self, *, forget: bool = False) -> None:
        """As if the agent restarted: its running job is lost (forgotten, or marked so)."""
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.url}/control/restart", params={"forget": forget})
            r.raise_for_status()

    async def log(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            return list((await http.get(self.url + "/control/log")).json())

    async def holds(self, job_id: str) -> bool:
        """Whether the agent says it is running this job."""
        async with httpx.AsyncClient() as http:
            state = (await http.get(self.url + "/api/v1/status")).json()
        return job_id in state["running_jobs"]

    async def executed(self) -> list[str]:
        return [e["job_id"] for e in await self.log() if e["call"] == "execute"]
