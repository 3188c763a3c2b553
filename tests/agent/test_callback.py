"""An agent told of a callback URL reports the end of the job there; a dead URL changes nothing."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.agent.jobs import experiment, new_job_id
from tests.support.processes import free_port, wait_until


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A real HTTP server that records the notifications it receives."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put({"path": self.path, "body": json.loads(body)})
            self.send_response(202)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def test_the_agent_reports_the_end_of_the_job_to_its_callback(
    client: httpx.Client, receiver: tuple[str, queue.Queue[dict[str, Any]]]
) -> None:
    url, received = receiver
    job_id = new_job_id()
    spec = experiment("compute_benchmark", {"matrix_sizes": [32], "precision_types": ["fp32"]})
    callback = f"{url}/api/v1/jobs/{job_id}/notify?token=abc"
    r = client.post(
        "/api/v1/jobs", json={"job_id": job_id, "experiment_spec": spec, "callback_url": callback}
    )
    assert r.status_code == 200
    note = received.get(timeout=30)
    assert note["path"] == f"/api/v1/jobs/{job_id}/notify?token=abc"
    assert note["body"]["job_id"] == job_id
    assert note["body"]["status"]["status"] == "completed"
    assert client.get(f"/api/v1/status/{job_id}").json()["status"] == "completed"


def test_an_unreachable_callback_does_not_disturb_the_job(client: httpx.Client) -> None:
    job_id = new_job_id()
    spec = experiment("compute_benchmark", {"matrix_sizes": [32], "precision_types": ["fp32"]})
    dead = f"http://127.0.0.1:{free_port()}/notify"
    r = client.post(
        "/api/v1/jobs", json={"job_id": job_id, "experiment_spec": spec, "callback_url": dead}
    )
    assert r.status_code == 200
    wait_until(
        lambda: client.get(f"/api/v1/status/{job_id}").json()["status"] == "completed",
        30,
        what="the job to complete",
    )
    assert client.get("/api/v1/status").json()["status"] == "idle"
