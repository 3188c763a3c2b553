"""Hostile requests to a real `ruckus api` and a real agent: a clear 4xx, nothing stored."""

from __future__ import annotations

import http.client
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.conftest import (
    AGENT_TOKEN,
    API_KEY,
    SecureStack,
    agent_client,
    api_client,
    assert_serves_a_job,
    tiny_experiment,
)
from tests.support.stack import HttpService

MB = 1024 * 1024
DEPTH = 10_000


@dataclass
class Hostile:
    """One request; `raw` paths go out byte for byte (httpx would resolve `..` segments)."""

    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    raw: bool = False
    status: int | None = None  # the exact status, where one is owed


def big_json(size: int, wrap: Any) -> bytes:
    filler = "x" * size
    return json.dumps(wrap(filler)).encode()


def nested(depth: int, leaf: str) -> str:
    """`{"experiment_spec": ... "params": {"x": [[[ ... ]]]}}` with `depth` levels."""
    return "[" * depth + leaf + "]" * depth


def spec_json(**overrides: Any) -> dict[str, Any]:
    return tiny_experiment() | overrides


async def chunks(total: int) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked), `total` bytes of a JSON string."""
    yield b'{"experiment_spec": {"name": "'
    for _ in range(total // MB):
        yield b"x" * MB
    yield b'"}}'


INVALID_UTF8 = b'{"experiment_spec": {"id": "exp-\xff\xfe", "name": "\xc3\x28", "model": "m"}}'

API_CASES: dict[str, Hostile] = {
    "20 MB body": Hostile(
        "POST",
        "/api/v1/experiments/",
        big_json(20 * MB, lambda s: {"experiment_spec": {"name": s}}),
        status=413,
    ),
    "deep nesting": Hostile(
        "POST",
        "/api/v1/experiments/",
        (
            '{"experiment_spec": {"name": "n", "model": "m", "task": {"name": "t", '
            '"type": "compute_benchmark", "params": {"x": ' + nested(DEPTH, "1") + "}}}}"
        ).encode(),
    ),
    "deep nesting, job": Hostile("POST", "/api/v1/jobs", nested(DEPTH, "{}").encode()),
    "1 MB experiment id": Hostile(
        "POST",
        "/api/v1/experiments/",
        json.dumps({"experiment_spec": spec_json(id="e" * MB)}).encode(),
        status=422,
    ),
    "3 MB experiment name": Hostile(
        "POST",
        "/api/v1/experiments/",
        json.dumps({"experiment_spec": spec_json(name="n" * 3 * MB)}).encode(),
        status=422,
    ),
    "1 MB agent id": Hostile(
        "POST",
        "/api/v1/jobs",
        json.dumps({"experiment_id": "e", "agent_id": "a" * MB}).encode(),
        status=422,
    ),
    "1 MB agent url": Hostile(
        "POST",
        "/api/v1/agents/register",
        json.dumps({"agent_url": "http://a" + "a" * MB}).encode(),
        status=422,
    ),
    "long id in the path": Hostile("GET", "/api/v1/jobs/" + "j" * 10_000),
    "invalid UTF-8": Hostile("POST", "/api/v1/experiments/", INVALID_UTF8),
    "text/plain": Hostile(
        "POST",
        "/api/v1/experiments/",
        json.dumps({"experiment_spec": tiny_experiment()}).encode(),
        {"Content-Type": "text/plain"},
    ),
    "form": Hostile(
        "POST",
        "/api/v1/jobs",
        b"experiment_id=e&agent_id=a",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "multipart": Hostile(
        "POST",
        "/api/v1/agents/register",
        b'--b\r\nContent-Disposition: form-data; name="agent_url"\r\n\r\nhttp://x\r\n--b--\r\n',
        {"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "no content type": Hostile(
        "POST", "/api/v1/jobs", b'{"experiment_id": "e", "agent_id": "a"}', {}
    ),
    "non-ASCII callback token": Hostile(
        "POST",
        "/api/v1/jobs/job_12345678/notify?token=%C3%A9t%C3%A9",
        json.dumps({"job_id": "job_12345678", "status": {"status": "completed"}}).encode(),
        status=403,
    ),
    "traversal, encoded": Hostile("GET", "/api/v1/jobs/..%2F..%2Fetc%2Fpasswd", raw=True),
    "traversal, dot segments": Hostile("GET", "/api/v1/experiments/job_1/../x", raw=True),
    "traversal, delete": Hostile("DELETE", "/api/v1/experiments/..%2F..%2Fetc%2Fpasswd", raw=True),
    "traversal in a result id": Hostile("GET", "/api/v1/results/..%2F..%2Fetc%2Fpasswd", raw=True),
    "traversal in an experiment id": Hostile(
        "POST",
        "/api/v1/experiments/",
        json.dumps({"experiment_spec": spec_json(id="../../etc/passwd")}).encode(),
        status=422,
    ),
    "traversal in a job's agent id": Hostile(
        "POST",
        "/api/v1/jobs",
        json.dumps({"experiment_id": "e", "agent_id": "../../x"}).encode(),
        status=422,
    ),
}


def agent_job(job_id: str, **spec: Any) -> bytes:
    return json.dumps({"job_id": job_id, "experiment_spec": spec_json(**spec)}).encode()


AGENT_CASES: dict[str, Hostile] = {
    "20 MB body": Hostile(
        "POST", "/api/v1/jobs", agent_job("job_big", name="n" * 20 * MB), status=413
    ),
    "deep nesting": Hostile(
        "POST",
        "/api/v1/jobs",
        ('{"job_id": "job_deep", "experiment_spec": ' + nested(DEPTH, "{}") + "}").encode(),
    ),
    "1 MB job id": Hostile("POST", "/api/v1/jobs", agent_job("j" * MB), status=422),
    "invalid UTF-8": Hostile(
        "POST", "/api/v1/jobs", b'{"job_id": "job_\xff", "experiment_spec": {}}'
    ),
    "text/plain": Hostile(
        "POST", "/api/v1/jobs", agent_job("job_text"), {"Content-Type": "text/plain"}
    ),
    "form": Hostile(
        "POST",
        "/api/v1/jobs",
        b"job_id=job_form",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "no content type": Hostile("POST", "/api/v1/jobs", agent_job("job_none"), {}),
    "traversal in a job id": Hostile(
        "POST", "/api/v1/jobs", agent_job("../../escaped"), status=422
    ),
    "encoded traversal in a job id": Hostile(
        "POST", "/api/v1/jobs", agent_job("..%2F..%2Fescaped"), status=422
    ),
    "traversal in a status path": Hostile("GET", "/api/v1/status/..%2F..%2Fetc%2Fpasswd", raw=True),
    "traversal in a results path": Hostile("GET", "/api/v1/results/job_1/../../x", raw=True),
    "traversal in a cancel path": Hostile("DELETE", "/api/v1/jobs/..%2F..%2Fescaped", raw=True),
}


async def send(base_url: str, token: str, case: Hostile) -> tuple[int, str]:
    """The status and body of the answer to `case`."""
    headers = {"Authorization": f"Bearer {token}", **case.headers}
    if case.raw:
        host, port = base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(case.method, case.path, body=case.content, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read().decode(errors="replace")
        finally:
            conn.close()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http_:
        response = await http_.request(
            case.method, case.path, content=case.content, headers=headers
        )
        return response.status_code, response.text


def assert_clear_4xx(status: int, body: str, case: Hostile) -> None:
    if case.status is not None:
        assert status == case.status, (status, body[:300])
    assert 400 <= status < 500, (status, body[:300])
    detail = json.loads(body)["detail"]
    assert detail, body[:300]
    if status == 413:
        assert "larger than" in str(detail) and "bytes" in str(detail), detail


async def api_state(http: httpx.AsyncClient) -> dict[str, Any]:
    """Everything the API has stored, as its listings show it."""
    state = {}
    for area in ("agents/", "experiments/", "jobs", "results"):
        response = await http.get(f"/api/v1/{area}")
        assert response.status_code == 200, response.text
        state[area] = response.json()
    return state


@pytest.fixture(scope="module")
async def api_http(api: HttpService, agent_id: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api) as http_:
        yield http_


@pytest.mark.parametrize("name", list(API_CASES))
async def test_hostile_request_to_the_server_is_refused_and_stores_nothing(
    name: str, api: HttpService, api_http: httpx.AsyncClient
) -> None:
    case = API_CASES[name]
    before = await api_state(api_http)
    status, body = await send(api.url, API_KEY, case)
    assert_clear_4xx(status, body, case)
    assert await api_state(api_http) == before


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.suffix != ".log"}


@pytest.mark.parametrize("name", list(AGENT_CASES))
async def test_hostile_request_to_the_agent_is_refused_and_writes_nothing(
    name: str, secure: SecureStack, agent: HttpService
) -> None:
    case = AGENT_CASES[name]
    # The agent's data dir and everything around it (the other processes' folders).
    before = files_under(secure.root / "agent-main") | set(secure.root.iterdir())
    status, body = await send(agent.url, AGENT_TOKEN, case)
    assert_clear_4xx(status, body, case)
    after = files_under(secure.root / "agent-main") | set(secure.root.iterdir())
    assert after == before
    assert not list(secure.root.rglob("escaped*"))
    async with agent_client(agent) as http_:
        state = (await http_.get("/api/v1/status")).json()
    assert state["status"] == "idle" and state["current_job_id"] is None, state


async def test_an_unsized_stream_past_the_limit_is_refused(
    api: HttpService, api_http: httpx.AsyncClient
) -> None:
    before = await api_state(api_http)
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http_:
        response = await http_.post(
            "/api/v1/experiments/",
            content=chunks(8 * MB),
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413, response.text[:300]
    assert "larger than" in response.json()["detail"]
    assert await api_state(api_http) == before


async def test_the_system_still_serves_a_job_afterwards(
    api_http: httpx.AsyncClient, agent_id: str
) -> None:
    await assert_serves_a_job(api_http, agent_id)
