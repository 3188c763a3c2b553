"""A secured stack of real processes: Temporal dev server, worker, `ruckus api` and a real agent.

The API has an API key, the worker and the API send the agent token, the agent requires it.
Secrets are fresh per session, so finding one anywhere cannot be a coincidence.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from common.models import JobInfo, JobStatusEnum
from tests.agent.llm import LLM_API_KEY, LLM_KEY_ENV
from tests.orchestration.conftest import FAST
from tests.support.processes import ServiceProcess
from tests.support.stack import (
    FakeAgent,
    HttpService,
    ManagedProcess,
    TemporalDevServer,
    free_port,
    wait_until,
)

API_KEY = f"api-key-{secrets.token_hex(16)}"
AGENT_TOKEN = f"agent-token-{secrets.token_hex(16)}"
CALLBACK_SECRET = f"callback-secret-{secrets.token_hex(16)}"
PAYLOAD_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
# Small limits keep the hostile answers cheap to produce; the defaults are 1 MB and 50 MB.
RESULTS_LIMIT = 2 * 1024 * 1024
TERMINAL = tuple(s for s in JobStatusEnum if s.is_terminal)


class SecureStack:
    """Processes sharing one Temporal server and one SQLite storage directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temporal = TemporalDevServer(root)
        self.storage_dir = root / "storage"
        self.task_queue = f"sec-{uuid.uuid4().hex[:8]}"
        self.processes: list[ManagedProcess] = []
        self._worker: ManagedProcess | None = None

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "RUCKUS_STORAGE_DATA_DIR": str(self.storage_dir),
            "RUCKUS_TASK_QUEUE": self.task_queue,
            **{f"RUCKUS_{k.upper()}": str(v) for k, v in FAST.items()},
            "RUCKUS_AGENT_CALL_TIMEOUT": "1.0",
            "RUCKUS_AGENT_TOKEN": AGENT_TOKEN,
            "RUCKUS_AGENT_MAX_RESULTS_BYTES": str(RESULTS_LIMIT),
            "RUCKUS_CALLBACK_SECRET": CALLBACK_SECRET,
        }
        return base | extra

    async def start_worker(self, name: str = "worker", **env: str) -> ManagedProcess:
        worker = ManagedProcess(
            [sys.executable, "-m", "ruckus.cli", "worker"],
            self.root / f"{name}.log",
            self.env(**env),
        )
        worker.start()
        self.processes.append(worker)
        self._worker = self._worker or worker  # the first one serves the main task queue
        await wait_until(
            lambda: "worker serving task queue" in worker.output(),
            60,
            what=f"the worker to serve (log: {worker.log_path})",
        )
        return worker

    async def start_api(self, name: str = "api", **env: str) -> HttpService:
        port = free_port()
        cmd = [sys.executable, "-m", "ruckus.cli", "api", "--port", str(port)]
        api = HttpService(
            cmd, port, self.root / f"{name}.log", self.env(RUCKUS_API_KEY=API_KEY, **env)
        )
        await api.start_and_wait()
        self.processes.append(api)
        return api

    async def start_agent(self, name: str, token: str = AGENT_TOKEN, **env: str) -> HttpService:
        """A real Ruckus agent with its own data dir under `root/name/data`."""
        port = free_port()
        home = self.root / name
        home.mkdir()
        settings = {
            "RUCKUS_AGENT_HOST": "127.0.0.1",
            "RUCKUS_AGENT_PORT": str(port),
            "RUCKUS_AGENT_DATA_DIR": str(home / "data"),
            "RUCKUS_AGENT_AGENT_ID": name,
            "RUCKUS_AGENT_TOKEN": token,
            LLM_KEY_ENV: LLM_API_KEY,
            **env,
        }
        agent = HttpService(
            [sys.executable, "-m", "agent.main"], port, home / "agent.log", settings
        )
        await agent.start_and_wait()
        self.processes.append(agent)
        return agent

    async def start_fake_agent(self, agent_id: str) -> FakeAgent:
        fake = FakeAgent(self.root, agent_id)
        await fake.start_and_wait()
        self.processes.append(fake)
        return fake

    @property
    def worker(self) -> ManagedProcess:
        """The worker of the main task queue."""
        assert self._worker is not None, "the stack is not started"
        return self._worker

    def logs(self) -> str:
        """Every process's output so far, the Temporal server's included."""
        paths = [p.log_path for p in self.processes] + [self.temporal.log_path]
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def stop(self) -> None:
        for process in reversed(self.processes):
            # A fake agent may hold a hanging answer open: it has nothing to lose to a kill.
            if isinstance(process, FakeAgent):
                process.kill()
            else:
                process.stop()
        self.temporal.stop()


@pytest.fixture(scope="session")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureStack]:
    stack = SecureStack(tmp_path_factory.mktemp("security"))
    try:
        await stack.temporal.start_and_wait()
        await stack.start_worker()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def fake_llm(secure: SecureStack) -> Iterator[ServiceProcess]:
    """The OpenAI-compatible test endpoint, requiring the LLM key the agent has in its env."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "tests.agent.fake_openai:app"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "1"]
    env = os.environ | {"FAKE_OPENAI_API_KEY": LLM_API_KEY}
    with ServiceProcess(args, port=port, env=env, log_path=secure.root / "fake-llm.log") as llm:
        yield llm


@pytest.fixture(scope="session")
async def api(secure: SecureStack) -> HttpService:
    return await secure.start_api()


@pytest.fixture(scope="session")
async def agent(secure: SecureStack) -> HttpService:
    """The real agent every normal job runs on."""
    return await secure.start_agent("agent-main")


@pytest.fixture(scope="session")
async def agent_id(api: HttpService, agent: HttpService) -> str:
    async with api_client(api) as http:
        return await register(http, agent.url)


def api_client(api: HttpService, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30)


def agent_client(agent: HttpService, token: str | None = AGENT_TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=agent.url, headers=headers, timeout=30)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tiny_experiment(experiment_id: str | None = None) -> dict[str, Any]:
    """A compute benchmark that runs in about a second."""
    return {
        "id": experiment_id or unique("exp"),
        "name": "tiny matmul",
        "model": "none",
        "task": {
            "name": "matmul",
            "type": "compute_benchmark",
            "params": {"matrix_sizes": [32], "precision_types": ["fp32"]},
        },
    }


async def register(http: httpx.AsyncClient, agent_url: str) -> str:
    response = await http.post("/api/v1/agents/register", json={"agent_url": agent_url})
    assert response.status_code == 200, response.text
    return str(response.json()["agent_id"])


async def create_experiment(http: httpx.AsyncClient, spec: dict[str, Any] | None = None) -> str:
    response = await http.post(
        "/api/v1/experiments/", json={"experiment_spec": spec or tiny_experiment()}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["experiment_id"])


async def start_job(http: httpx.AsyncClient, experiment_id: str, agent_id: str) -> str:
    body = {"experiment_id": experiment_id, "agent_id": agent_id}
    response = await http.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["job_id"])


async def wait_end(http: httpx.AsyncClient, job_id: str, timeout: float = 40.0) -> JobInfo:
    """The job once it has a terminal status."""

    async def ended() -> JobInfo | None:
        response = await http.get(f"/api/v1/jobs/{job_id}")
        response.raise_for_status()
        job = JobInfo.model_validate(response.json())
        return job if job.status.status in TERMINAL else None

    return await wait_until(ended, timeout, interval=0.1, what=f"{job_id} to end")


async def run_job(
    http: httpx.AsyncClient, agent_id: str, spec: dict[str, Any] | None = None
) -> JobInfo:
    """Create an experiment, run it on the agent and wait for the end."""
    experiment_id = await create_experiment(http, spec)
    return await wait_end(http, await start_job(http, experiment_id, agent_id))


async def assert_serves_a_job(http: httpx.AsyncClient, agent_id: str) -> None:
    """A normal job completes and its results are stored: the system is still well."""
    job = await run_job(http, agent_id)
    assert job.status.status is JobStatusEnum.COMPLETED, job.status
    response = await http.get(f"/api/v1/results/{job.job_id}")
    assert response.status_code == 200, response.text
    assert response.json()["result"]["status"] == "completed"


# Reading what Temporal and storage keep


def payloads(message: Message) -> Iterator[Payload]:
    """Every Payload inside a history event, search attributes aside (never encrypted)."""
    if isinstance(message, Payload):
        yield message
        return
    for descriptor, value in message.ListFields():
        kind = descriptor.message_type
        if kind is None or kind.name == "SearchAttributes":
            continue
        if isinstance(value, Message):
            items = [value]
        elif kind.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from payloads(item)


async def histories(client: Client) -> dict[str, list[Any]]:
    """The history events of every workflow on the server, by workflow id and run."""
    found: dict[str, list[Any]] = {}
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        found[f"{execution.id}/{execution.run_id}"] = list(history.events)
    return found


def storage_text(storage_dir: Path) -> bytes:
    """The storage database's files byte for byte, and every row of every table as SQL."""
    raw = b"".join(p.read_bytes() for p in sorted(storage_dir.glob("ruckus.db*")))
    with sqlite3.connect(storage_dir / "ruckus.db") as db:
        dump = "\n".join(db.iterdump()).encode()
    return raw + dump
