"""Only holders of the API key and agent token act; no secret reaches history, storage or logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from common.models import JobStatusEnum
from tests.agent.llm import LLM_API_KEY, LLM_KEY_ENV, llm_experiment
from tests.security.conftest import (
    AGENT_TOKEN,
    API_KEY,
    CALLBACK_SECRET,
    PAYLOAD_KEY,
    SecureStack,
    agent_client,
    api_client,
    create_experiment,
    histories,
    payloads,
    register,
    run_job,
    start_job,
    storage_text,
    tiny_experiment,
    wait_end,
)
from tests.support.processes import ServiceProcess
from tests.support.stack import HttpService

# No prefix of the LLM key of 8 characters or more may survive anywhere (a cut copy of it).
LLM_KEY_PREFIX = LLM_API_KEY[:8]
SECRETS = {
    "API key": API_KEY,
    "agent token": AGENT_TOKEN,
    "callback secret": CALLBACK_SECRET,
    "LLM key": LLM_API_KEY,
    "payload key": PAYLOAD_KEY,
}


@pytest.fixture(scope="module")
async def api_http(api: HttpService) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api) as http_:
        yield http_


async def test_the_api_refuses_a_missing_or_wrong_key_and_stores_nothing(
    api: HttpService, api_http: httpx.AsyncClient, agent_id: str
) -> None:
    before = (await api_http.get("/api/v1/experiments/")).json()
    body = {"experiment_spec": tiny_experiment()}
    for key in (None, "", "wrong", API_KEY + "x", API_KEY[:-1]):
        async with api_client(api, key) as stranger:
            created = await stranger.post("/api/v1/experiments/", json=body)
            job = await stranger.post(
                "/api/v1/jobs", json={"experiment_id": "e", "agent_id": agent_id}
            )
            listed = await stranger.get("/api/v1/jobs")
        for answer in (created, job, listed):
            assert answer.status_code == 401, answer.text
            assert "API key" in answer.json()["detail"]
    assert (await api_http.get("/api/v1/experiments/")).json() == before


async def test_the_agent_refuses_a_missing_or_wrong_token_and_runs_nothing(
    secure: SecureStack, agent: HttpService
) -> None:
    for token in (None, "wrong", AGENT_TOKEN[:-1]):
        async with agent_client(agent, token) as stranger:
            job = {"job_id": "job_stranger", "experiment_spec": tiny_experiment()}
            answers = [
                await stranger.post("/api/v1/jobs", json=job),
                await stranger.get("/api/v1/status"),
                await stranger.get("/api/v1/info"),
                await stranger.get("/api/v1/status/job_stranger"),
                await stranger.get("/api/v1/results/job_stranger"),
                await stranger.delete("/api/v1/jobs/job_stranger"),
            ]
        for answer in answers:
            assert answer.status_code == 401, answer.text
    async with agent_client(agent) as owner:
        assert (await owner.get("/api/v1/status/job_stranger")).status_code == 404
    assert not list((secure.root / "agent-main").rglob("job_stranger*"))


async def test_a_worker_without_the_token_fails_the_job_and_the_agent_runs_nothing(
    secure: SecureStack, api_http: httpx.AsyncClient
) -> None:
    # A second worker and API on their own task queue, both without the agent token.
    queue = f"{secure.task_queue}-tokenless"
    guarded, _, tokenless = await asyncio.gather(
        secure.start_agent("agent-guarded"),
        secure.start_worker("worker-tokenless", RUCKUS_AGENT_TOKEN="", RUCKUS_TASK_QUEUE=queue),
        secure.start_api("api-tokenless", RUCKUS_AGENT_TOKEN="", RUCKUS_TASK_QUEUE=queue),
    )
    guarded_id = await register(api_http, guarded.url)
    async with api_client(tokenless) as other:
        experiment_id = await create_experiment(other)
        job = await wait_end(other, await start_job(other, experiment_id, guarded_id))
        assert job.status.status is JobStatusEnum.FAILED, job.status
        assert "get_agent_status failed: the agent answered HTTP 401" in job.status.message
        # Its own registration and status calls go without the token: refused by the agent.
        refused = await other.post("/api/v1/agents/register", json={"agent_url": guarded.url})
        assert refused.status_code == 502, refused.text
        assert "get_agent_info failed: the agent answered HTTP 401" in refused.json()["detail"]
        status = (await other.get(f"/api/v1/agents/{guarded_id}/status")).json()["agent"]
        assert status["status"] == "unavailable", status
    async with agent_client(guarded) as owner:
        assert (await owner.get(f"/api/v1/status/{job.job_id}")).status_code == 404
        assert (await owner.get("/api/v1/status")).json()["status"] == "idle"
    assert not list((secure.root / "agent-guarded" / "data" / "jobs").glob("*.json"))

    # The API and worker that have the token: its status is read, and the job completes.
    status = (await api_http.get(f"/api/v1/agents/{guarded_id}/status")).json()["agent"]
    assert status["status"] == "idle", status
    done = await run_job(api_http, guarded_id)
    assert done.status.status is JobStatusEnum.COMPLETED, done.status


# None: a well-behaved endpoint. echo_key: it echoes the key in `model` and `usage`.
# error_echo: its error message quotes the key where a cut at 300 characters would fall.
@pytest.mark.parametrize("mode", [None, "echo_key", "error_echo"])
async def test_an_llm_key_is_in_no_workflow_history_and_not_in_storage(
    secure: SecureStack,
    api_http: httpx.AsyncClient,
    agent_id: str,
    fake_llm: ServiceProcess,
    mode: str | None,
) -> None:
    spec = llm_experiment(fake_llm.url, "name three colours", max_tokens=16, mode=mode)
    job = await run_job(api_http, agent_id, spec)
    # The agent read the key from the variable the spec names, and the endpoint accepted it.
    expected = JobStatusEnum.FAILED if mode == "error_echo" else JobStatusEnum.COMPLETED
    assert job.status.status is expected, job.status
    assert LLM_KEY_PREFIX not in job.status.message
    result = (await api_http.get(f"/api/v1/results/{job.job_id}")).json()["result"]
    assert result["status"] == expected.value, result
    assert LLM_KEY_PREFIX not in json.dumps(result)
    if mode == "echo_key":
        assert result["model_actual"].endswith("@***")

    found = await histories(await secure.temporal.client())
    assert any(job.job_id in run for run in found), "the job's workflow is listed"
    seen_spec = False
    for run, events in found.items():
        for event in events:
            raw = event.SerializeToString()
            decoded = [p.data for p in payloads(event)]
            seen_spec = seen_spec or any(LLM_KEY_ENV.encode() in data for data in decoded)
            for name, secret in SECRETS.items():
                assert secret.encode() not in raw, f"the {name} is in the history of {run}"
                assert all(secret.encode() not in data for data in decoded), (name, run)
            assert all(LLM_KEY_PREFIX.encode() not in data for data in decoded), run
    # The spec, with the name of the key's variable, is in history: the search looked there.
    assert seen_spec

    stored = storage_text(secure.storage_dir)
    assert LLM_KEY_ENV.encode() in stored and job.job_id.encode() in stored
    for name, secret in SECRETS.items():
        assert secret.encode() not in stored, f"the {name} is in the storage database"
    assert LLM_KEY_PREFIX.encode() not in stored


async def test_no_secret_is_in_any_log(secure: SecureStack, api: HttpService) -> None:
    """Last in the session's order: every Ruckus process's and Temporal's whole output so far."""
    async with api_client(api, "wrong") as stranger:  # a refusal is in the logs too
        assert (await stranger.get("/api/v1/jobs")).status_code == 401
    logs = secure.logs()
    assert "worker serving task queue" in logs and "GET /api/v1/jobs" in logs
    for name, secret in SECRETS.items():
        assert secret not in logs, f"the {name} is in a log"
    assert LLM_KEY_PREFIX not in logs, "a prefix of the LLM key is in a log"
