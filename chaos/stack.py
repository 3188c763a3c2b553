"""The processes of one chaos run: Temporal, a worker, the API and real agents, each restartable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from common.settings import StorageSettings
from ruckus.supervisor import Child
from ruckus.temporal_server import dev_server_command

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "agent", "activities", "workflows", "api", "ruckus")
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Timing:
    """Short polling, and an agent-call retry budget that rides out restarts and brief pauses.

    All tries of one agent call must end within its local activity's start-to-close timeout
    (call timeout + 5 s): past it Temporal reports "Local Activity timed out" instead of the
    call's own error, and the job's message names no cause (recorded in bench/RESULTS.md).
    """

    polling_interval: float = 0.5
    call_timeout: float = 4.0
    retry_initial: float = 0.5
    retry_maximum: float = 2.0
    retry_attempts: int = 6

    def budget(self) -> float:
        """How long an agent whose port is closed is tried before its job fails."""
        waits, wait = 0.0, self.retry_initial
        for _ in range(self.retry_attempts - 1):
            waits += wait
            wait = min(wait * 2, self.retry_maximum)
        return waits

    def silent_budget(self) -> float:
        """The same for an agent that accepts connections but never answers (SIGSTOP)."""
        return self.retry_attempts * self.call_timeout + self.budget()

    def env(self) -> dict[str, str]:
        return {
            "RUCKUS_JOB_STATUS_POLLING_INTERVAL": str(self.polling_interval),
            "RUCKUS_AGENT_CALL_TIMEOUT": str(self.call_timeout),
            "RUCKUS_AGENT_RETRY_INITIAL_INTERVAL": str(self.retry_initial),
            "RUCKUS_AGENT_RETRY_MAXIMUM_INTERVAL": str(self.retry_maximum),
            "RUCKUS_AGENT_RETRY_MAXIMUM_ATTEMPTS": str(self.retry_attempts),
            "RUCKUS_BUSY_AGENT_RECHECK_INITIAL": "0.2",
            "RUCKUS_BUSY_AGENT_RECHECK_MAXIMUM": "1.0",
            "RUCKUS_DEPENDENCY_RETRY_INTERVAL": "0.5",
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool],
    timeout: float,
    what: str,
    give_up: Callable[[], None] = lambda: None,
) -> None:
    """Poll `condition` until true; RuntimeError naming `what` after `timeout` seconds.

    `give_up` runs before each try and may raise to stop waiting at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        give_up()
        with contextlib.suppress(Exception):
            value = condition()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


async def http_ok(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        return (await http.get(url)).status_code == 200


class PostgresDatabase:
    """A database created for the run; it can be made unavailable for a while."""

    def __init__(self) -> None:
        self.name = f"ruckus_chaos_{secrets.token_hex(5)}"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=10
        )

    async def _execute(self, *statements: str) -> None:
        admin = await self._admin()
        try:
            for statement in statements:
                await admin.execute(statement)
        finally:
            await admin.close()

    async def create(self) -> None:
        await self._execute(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def block(self) -> None:
        """New connections refused, open ones cut: storage is down for every process."""
        await self._execute(
            f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()",
        )

    async def unblock(self) -> None:
        await self._execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


class ChaosStack:
    """Every process of the run as a restartable child; logs append across restarts."""

    def __init__(self, root: Path, agents: int, timing: Timing, postgres: bool) -> None:
        self.root = root
        self.timing = timing
        self.database = PostgresDatabase() if postgres else None
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.agent_ports = [free_port() for _ in range(agents)]
        self.agent_ids = [f"chaos-agent-{i}" for i in range(agents)]
        self.logs = root / "logs"
        self.storage_dir = root / "storage"
        self.code = root / "code"
        snapshot_code(self.code)
        python = [sys.executable, "-m", "ruckus.cli"]
        env = self.env()
        self.temporal = Child(
            "temporal",
            dev_server_command(db_file=root / "temporal.db", port=self.temporal_port),
            self.logs / "temporal.log",
        )
        self.worker = Child("worker", [*python, "worker"], self.logs / "worker.log", env)
        api_cmd = [*python, "api", "--port", str(self.api_port)]
        self.api = Child("api", api_cmd, self.logs / "api.log", env)
        self.agents = [
            Child(
                agent_id,
                [*python, "agent", "--port", str(port)],
                self.agent_log(i),
                {
                    **env,
                    "RUCKUS_AGENT_DATA_DIR": str(self.agent_dir(i)),
                    "RUCKUS_AGENT_AGENT_ID": agent_id,
                    # Agents call back only to the servers they are told of.
                    "RUCKUS_AGENT_CALLBACK_ORIGINS": json.dumps([self.api_url]),
                },
            )
            for i, (agent_id, port) in enumerate(zip(self.agent_ids, self.agent_ports, strict=True))
        ]
        self._paused: set[int] = set()

    # Where things are

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def agent_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.agent_ports[i]}"

    def agent_dir(self, i: int) -> Path:
        return self.root / "agents" / self.agent_ids[i]

    def agent_log(self, i: int) -> Path:
        return self.logs / f"{self.agent_ids[i]}.log"

    def storage_settings(self) -> StorageSettings:
        url = self.database.url if self.database else None
        return StorageSettings(data_dir=self.storage_dir, database_url=url)

    def env(self) -> dict[str, str]:
        env = {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "RUCKUS_STORAGE_DATA_DIR": str(self.storage_dir),
            "RUCKUS_TASK_QUEUE": "chaos-jobs",
            "RUCKUS_CALLBACK_BASE_URL": self.api_url,
            # Workers and API servers must share it, or a restarted API refuses callbacks.
            "RUCKUS_CALLBACK_SECRET": secrets.token_hex(16),
            # Every process, restarted or not, runs the code as it was when the run began.
            "PYTHONPATH": str(self.code),
            **self.timing.env(),
        }
        if self.database:
            env["RUCKUS_STORAGE_DATABASE_URL"] = self.database.url
        # Secrets of the caller's shell must not leak into the run (empty means unset).
        env |= {"RUCKUS_API_KEY": "", "RUCKUS_AGENT_TOKEN": ""}
        return env

    # Starting and stopping

    async def start(self) -> None:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        if self.database:
            await self.database.create()
        await self.start_temporal()
        await self.start_worker()
        await self.start_api()
        await asyncio.gather(*(self.start_agent(i) for i in range(len(self.agents))))

    async def stop(self) -> None:
        for i in list(self._paused):
            self.resume_agent(i)
        for child in [*self.agents, self.api, self.worker, self.temporal]:
            await asyncio.to_thread(child.stop, 10)
        if self.database:
            with contextlib.suppress(Exception):
                await self.database.unblock()
                await self.database.drop()

    async def start_temporal(self) -> None:
        self.temporal.start()
        await self._healthy(self.temporal, self._temporal_ready, "the Temporal dev server")

    async def start_worker(self) -> None:
        self.worker.start()
        worker = self.worker
        await self._healthy(
            worker, lambda: "worker serving task queue" in worker.output(), "the worker"
        )

    async def start_api(self) -> None:
        self.api.start()
        await self._healthy(self.api, lambda: http_ok(self.api_url + "/health"), "the API")

    async def start_agent(self, i: int) -> None:
        self.agents[i].start()
        url = self.agent_url(i) + "/health"
        await self._healthy(self.agents[i], lambda: http_ok(url), self.agent_ids[i])

    async def _healthy(
        self, child: Child, condition: Callable[[], Awaitable[bool] | bool], what: str
    ) -> None:
        def exited() -> None:
            if not child.alive():
                raise RuntimeError(
                    f"{what} exited with code {child.exit_code()}: {child.last_lines(5)}"
                )

        await wait_for(condition, START_TIMEOUT, f"{what} to be healthy", exited)

    async def _temporal_ready(self) -> bool:
        client = await Client.connect(self.temporal_address)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True

    # Faults

    @staticmethod
    async def kill(child: Child) -> None:
        """SIGKILL to the child's process group, then reap it."""
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(child.proc.wait)

    async def restart_api(self) -> None:
        """A graceful restart: SIGTERM (uvicorn finishes requests in flight), then start again."""
        await asyncio.to_thread(self.api.stop, 15)
        await self.start_api()

    def pause_agent(self, i: int) -> None:
        """SIGSTOP: the port stays open but nothing answers, as with a cut network."""
        proc = self.agents[i].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        self._paused.add(i)

    def resume_agent(self, i: int) -> None:
        proc = self.agents[i].proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        self._paused.discard(i)

    async def agent_current_job(self, i: int) -> str | None:
        async with httpx.AsyncClient(timeout=2) as http:
            status: dict[str, Any] = (await http.get(self.agent_url(i) + "/api/v1/status")).json()
        return status.get("current_job_id")


def snapshot_code(target: Path) -> None:
    """Copy Ruckus's packages: edits to the checkout during a run must not mix code versions."""
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
