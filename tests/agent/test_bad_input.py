"""Bad requests get a JSON 4xx naming what is wrong, write nothing, and keep the connection."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.jobs import experiment, new_job_id
from tests.support.processes import AgentProcess


def files_of(agent: AgentProcess) -> set[Path]:
    return {p for p in Path(agent.data_dir).rglob("*") if p.is_file() and "sqlite3" not in p.name}


@pytest.mark.parametrize("job_id", ["..", ".hidden", "-x", "a/b", "a\\b", "a" * 129, ""])
def test_a_job_id_outside_the_servers_rule_is_refused(
    client: httpx.Client, agent: AgentProcess, job_id: str
) -> None:
    before = files_of(agent)
    body = {"job_id": job_id, "experiment_spec": experiment("memory_benchmark")}
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "job_id"]
    assert files_of(agent) == before


@pytest.mark.parametrize("path", ["/api/v1/status/%2E%2E", "/api/v1/results/.hidden"])
def test_a_malformed_job_id_in_a_path_is_a_422(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "job_id"]


@pytest.mark.parametrize(
    "body",
    [
        '{"experiment_id": NaN}',
        '{"job_id": "JOB", "experiment_spec": {"name": "n", "model": "m", "task": {"name": "t", '
        '"type": "memory_benchmark", "params": {"test_sizes_mb": [Infinity]}}}}',
        '{"job_id": "JOB", "experiment_spec": {"name": "n", "model": "m", "task": {"name": "t", '
        '"type": "memory_benchmark", "params": {"runs": -Infinity}}}}',
    ],
)
def test_nan_or_infinity_in_a_body_is_a_json_422_and_the_connection_stays(
    agent: AgentProcess, client: httpx.Client, body: str
) -> None:
    job_id = new_job_id()
    connection = http.client.HTTPConnection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]))
    try:
        status, answer, headers = exchange(
            connection, "POST", "/api/v1/jobs", body.replace("JOB", job_id)
        )
        assert status == 422
        assert answer["detail"][0]["type"] == "json_invalid"
        assert "not a JSON number" in json.dumps(answer)
        assert headers.get("connection", "").lower() != "close"
        socket_before = connection.sock

        status, answer, _ = exchange(connection, "GET", f"/api/v1/status/{job_id}")
        assert (status, connection.sock) == (404, socket_before)  # same connection, no job
    finally:
        connection.close()


def test_an_unreadable_record_is_a_json_500_and_the_connection_stays(
    agent: AgentProcess, client: httpx.Client
) -> None:
    job_id = new_job_id()
    (Path(agent.data_dir) / "jobs" / f"{job_id}.json").write_text('{"job_id": "half a reco')
    connection = http.client.HTTPConnection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]))
    try:
        status, answer, _ = exchange(connection, "GET", f"/api/v1/status/{job_id}")
        assert status == 500
        assert job_id in answer["detail"] and "damaged" in answer["detail"]
        socket_before = connection.sock

        status, answer, _ = exchange(connection, "GET", "/health")
        assert (status, answer["status"], connection.sock) == (200, "healthy", socket_before)
    finally:
        connection.close()
        (Path(agent.data_dir) / "jobs" / f"{job_id}.json").unlink()


def exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    return response.status, answer, {k.lower(): v for k, v in response.getheaders()}
