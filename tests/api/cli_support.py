"""What the CLI tests share: `ruckus` run as a person runs it, its agents and its API servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, wait_until
from tests.support.stack import HttpService

REPO = Path(__file__).resolve().parents[2]
CLI_API_KEY = f"cli-key-{uuid.uuid4().hex}"


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without Ruckus settings, so only what a test gives counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_")} | extra


def ruckus(
    api: HttpService, *args: str, columns: int = 200, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"RUCKUS_SERVER_URL": api.url, "COLUMNS": str(columns), "PATH": "/usr/bin:/bin"}
    if key is not None:
        env["RUCKUS_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip


def api_get(api: HttpService, path: str, key: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(api.url + path, params=params, headers=headers, timeout=30)
    answer.raise_for_status()
    return answer.json()


class CliAgent:
    """`ruckus agent ...` as a person starts it, in a working directory of its own."""

    def __init__(self, cwd: Path, *flags: str, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"agent-{self.port}.log"
        args = [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(self.port), *flags]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=clean_env(**env)
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_once_it_says(self, words: str) -> str:
        """The log once a line with `words` is in it: the agent logs after the server answers."""

        def said() -> str | None:
            log = self.log()
            return log if words in log else None

        return wait_until(said, 30, interval=0.1, what=words)

    def agent_id(self) -> str:
        def answered() -> str:
            assert self.process.poll() is None, self.log()[-3000:]
            return str(httpx.get(self.url + "/health", timeout=2).json()["agent_id"])

        return wait_until(answered, 30, interval=0.1, ignore=(httpx.TransportError,))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def registered(api: HttpService, agent_id: str, url: str, key: str | None = None) -> dict:
    """The API's record of the agent once it is registered at `url`."""

    def at_url() -> dict | None:
        answer = httpx.get(
            f"{api.url}/api/v1/agents/{agent_id}/info",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=5,
        )
        if answer.status_code == 404:
            return None
        agent = answer.json()["agent"]
        return agent if agent["agent_url"] == url else None

    return wait_until(at_url, 60, interval=0.1, what=f"agent {agent_id} registered at {url}")


def joined_agent(api: HttpService, started: list[CliAgent], cwd: Path) -> str:
    """The id of a `ruckus agent --server` started (and listed for stopping) once the API
    has it."""
    agent = CliAgent(cwd, "--server", api.url)
    started.append(agent)
    agent_id = agent.agent_id()
    registered(api, agent_id, agent.url)
    return agent_id


def tiny_experiment(tmp_path: Path, experiment_id: str, **params: Any) -> Path:
    spec = {
        "id": experiment_id,
        "name": "tiny matmul from the command line",
        "model": "none",
        "task": {
            "name": "matmul",
            "type": "compute_benchmark",
            "params": {"matrix_sizes": [32], "precision_types": ["fp32"], **params},
        },
    }
    path = tmp_path / f"{experiment_id}.json"
    path.write_text(json.dumps(spec))
    return path
