"""A real agent process shared by the agent tests, and an HTTP client that finds it idle."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.agent.jobs import agent_state
from tests.support.processes import AgentProcess, wait_until


@pytest.fixture(scope="package")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    workdir = tmp_path_factory.mktemp("agent")
    with AgentProcess(workdir / "data", log_path=workdir / "agent.log") as process:
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
