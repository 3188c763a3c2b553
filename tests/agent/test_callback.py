"""An agent reports the end of a job to its callback URL, but only to the server it was configured
for (its server URL or callback origins; any, when it requires a token); a dead URL changes
nothing."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.jobs import experiment, new_job_id, wait_for_end
from tests.support.processes import AgentProcess, free_port, wait_until

TOKEN = "agent-token-for-callback-tests"
TINY = experiment("compute_benchmark", {"matrix_sizes": [32], "precision_types": ["fp32"]})


class Receiver:
    """A real HTTP server that records the notifications it receives; agents may register."""

    def __init__(self) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/api/v1/agents/register":
                    self.send_response(200)
                else:
                    received.put({"path": self.path, "body": json.loads(body)})
                    self.send_response(202)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def callback(self, job_id: str) -> str:
        return f"{self.url}/api/v1/jobs/{job_id}/notify?token=abc"

    def notes(self) -> list[dict[str, Any]]:
        return list(self.received.queue)


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    """The server the agent below is configured for."""
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    """A server the agent was not configured for."""
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def configured(
    server: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    """An agent that registers with `server`, without a token."""
    workdir = tmp_path_factory.mktemp("callback-agent")
    settings = {"server_url": server.url}
    with AgentProcess(workdir / "data", settings=settings, log_path=workdir / "a.log") as agent:
        yield agent


def run(agent_url: str, callbacks: list[str], token: str | None = None) -> str:
    """A tiny job with these callback URLs, run to its end."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=agent_url, timeout=15, headers=headers) as http:
        job_id = new_job_id()
        body = {"job_id": job_id, "experiment_spec": TINY, "callback_urls": callbacks}
        answer = http.post("/api/v1/jobs", json=body)
        assert answer.status_code == 200, answer.text
        assert wait_for_end(http, job_id)["status"] == "completed"
    return job_id


def test_the_agent_reports_the_end_of_the_job_to_the_server_it_registers_with(
    configured: AgentProcess, server: Receiver
) -> None:
    job_id = new_job_id()
    answer = httpx.post(
        f"{configured.url}/api/v1/jobs",
        json={"job_id": job_id, "experiment_spec": TINY, "callback_url": server.callback(job_id)},
        timeout=15,
    )
    assert answer.status_code == 200
    note = server.received.get(timeout=30)
    assert note["path"] == f"/api/v1/jobs/{job_id}/notify?token=abc"
    assert note["body"]["job_id"] == job_id
    assert note["body"]["status"]["status"] == "completed"


def test_a_callback_to_another_origin_is_not_made(
    configured: AgentProcess, server: Receiver, elsewhere: Receiver
) -> None:
    # Tried in order, the first that answers wins: had the first been used, the last would not.
    other_port = server.url.rsplit(":", 1)[0] + f":{free_port()}/notify"
    job_id = run(configured.url, [elsewhere.callback("job_a"), other_port, server.callback("a")])

    note = server.received.get(timeout=30)
    assert note["body"]["job_id"] == job_id
    assert elsewhere.notes() == []
    ignored = wait_until(
        lambda: [line for line in configured.log().splitlines() if job_id in line],
        10,
        what="the line that says the callbacks were ignored",
    )
    (line,) = [line for line in ignored if "callbacks to" in line]
    assert elsewhere.url in line and other_port.rsplit("/", 1)[0] in line
    assert "token=" not in line  # the URLs' tokens are not logged


def test_an_agent_configured_for_no_server_makes_no_callback(
    client: httpx.Client, agent: AgentProcess, elsewhere: Receiver
) -> None:
    job_id = run(agent.url, [elsewhere.callback("job_x")])
    assert any(
        job_id in line and "callbacks to" in line and "ignored" in line
        for line in agent.log().splitlines()
    )
    assert elsewhere.notes() == []


def test_callback_origins_name_more_servers(tmp_path: Path, elsewhere: Receiver) -> None:
    other = Receiver()
    try:
        settings = {"callback_origins": json.dumps([elsewhere.url + "/any/path"])}
        log = tmp_path / "a.log"
        with AgentProcess(tmp_path / "data", settings=settings, log_path=log) as agent:
            job_id = run(agent.url, [other.callback("job_z"), elsewhere.callback("job_z")])
            assert elsewhere.received.get(timeout=30)["body"]["job_id"] == job_id
            assert other.notes() == []
    finally:
        other.server.shutdown()


def test_an_agent_that_requires_a_token_calls_back_anywhere_and_a_dead_url_changes_nothing(
    tmp_path: Path, elsewhere: Receiver
) -> None:
    settings = {"token": TOKEN}
    with AgentProcess(tmp_path / "data", settings=settings, log_path=tmp_path / "a.log") as agent:
        dead = f"http://127.0.0.1:{free_port()}/notify"
        job_id = run(agent.url, [dead, elsewhere.callback("job_y")], token=TOKEN)
        note = elsewhere.received.get(timeout=30)
        assert note["body"]["job_id"] == job_id  # the dead one was tried first, then this one
        first = run(agent.url, [dead], token=TOKEN)
        status = httpx.get(
            f"{agent.url}/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        assert status["status"] == "idle" and first in [
            r["job_id"] for r in status["available_results"]
        ]


def test_callback_origins_are_urls(tmp_path: Path) -> None:
    settings = {"callback_origins": '["ftp://example.org"]'}
    agent = AgentProcess(tmp_path / "data", settings=settings, log_path=tmp_path / "a.log")
    with pytest.raises(RuntimeError, match="not an http"):
        agent.start()
