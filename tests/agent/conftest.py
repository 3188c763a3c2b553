"""A real agent process shared by the agent tests, and an HTTP client that finds it idle."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.agent.jobs import agent_state
from tests.agent.llm import LLM_API_KEY, LLM_KEY_ENV
from tests.support.processes import AgentProcess, ServiceProcess, free_port, wait_until


@pytest.fixture(scope="package")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    workdir = tmp_path_factory.mktemp("agent")
    process = AgentProcess(workdir / "data", log_path=workdir / "agent.log")
    # The key of the fake LLM endpoint, in the variable that experiments name by api_key_env.
    process.env[LLM_KEY_ENV] = LLM_API_KEY
    with process:
        yield process


@pytest.fixture
def client(agent: AgentProcess) -> Iterator[httpx.Client]:
    """A client of the shared agent; any job a failed test left running is cancelled first."""
    with httpx.Client(base_url=agent.url, timeout=15) as http:
        current = agent_state(http)["current_job_id"]
        if current:
            http.delete(f"/api/v1/jobs/{current}")
        wait_until(lambda: agent_state(http)["status"] == "idle", 10, what="the agent idle")
        yield http


@pytest.fixture(scope="package")
def fake_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The OpenAI-compatible test server (tests/agent/fake_openai.py) as a real process."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "tests.agent.fake_openai:app"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "1"]
    env = os.environ | {"FAKE_OPENAI_API_KEY": LLM_API_KEY}
    log = tmp_path_factory.mktemp("fake-llm") / "server.log"
    with ServiceProcess(args, port=port, env=env, log_path=log) as server:
        yield server
