"""The `ruckus` client commands against a real `ruckus api` process: tables, --json and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import Stack
from tests.support.stack import FakeAgent, HttpService

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("cli")
    await process.start_and_wait()
    yield process
    process.stop()


def ruckus(api: HttpService, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"RUCKUS_SERVER_URL": api.url, "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


async def test_a_user_runs_a_job_from_the_command_line(
    api: HttpService, fake_agent: FakeAgent
) -> None:
    registered = ruckus(api, "agents", "register", fake_agent.url, "--json")
    assert registered.returncode == 0, registered.stdout + registered.stderr
    agent_id = json.loads(registered.stdout)["agent_id"]
    assert agent_id in ruckus(api, "agents", "list").stdout  # a table for people

    spec = REPO / "examples" / "memory_benchmark.yaml"
    created = ruckus(api, "experiments", "create", "-f", str(spec), "--json")
    if created.returncode != 0:  # an earlier run of this module created it
        assert "already exists" in created.stdout, created.stdout
    assert "memory-bandwidth" in ruckus(api, "experiments", "list").stdout

    submitted = ruckus(api, "jobs", "submit", "memory-bandwidth", agent_id, "--watch", "--json")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    final = json.loads(submitted.stdout[submitted.stdout.rindex('{\n  "job_id"') :])
    job_id = final["job_id"]
    assert final["status"]["status"] == "completed"

    listed = json.loads(ruckus(api, "jobs", "list", "--agent", agent_id, "--json").stdout)
    assert [j["job_id"] for j in listed[agent_id]] == [job_id]
    shown = ruckus(api, "jobs", "show", job_id)
    assert job_id in shown.stdout and "completed" in shown.stdout
    result = json.loads(ruckus(api, "results", "show", job_id, "--json").stdout)
    assert result["job_id"] == job_id and result["metrics"]

    # Errors: one line with the server's reason, and a non-zero exit.
    again = ruckus(api, "jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "HTTP 409" in again.stdout and "already finished" in again.stdout
    unknown = ruckus(api, "jobs", "show", "job_00000000")
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stdout


def test_an_unreachable_server_is_a_clear_error() -> None:
    down = subprocess.run(
        [sys.executable, "-m", "ruckus.cli", "agents", "list", "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert down.returncode == 1
    assert "cannot reach the Ruckus server at http://127.0.0.1:9" in down.stdout
