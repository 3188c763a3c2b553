"""RUCKUS_PAYLOAD_KEY: Temporal keeps only ciphertext of specs and results; jobs still run."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sys

import httpx
import pytest
from google.protobuf import json_format
from temporalio.client import WorkflowHistory

from common.models import JobStatusEnum
from common.temporal import ENCRYPTED_ENCODING, PayloadKeyError, data_converter
from tests.security.conftest import (
    PAYLOAD_KEY,
    SecureStack,
    api_client,
    payloads,
    register,
    run_job,
    tiny_experiment,
    unique,
)
from tests.support.stack import HttpService, free_port


def plain_events(history: WorkflowHistory) -> list[bytes]:
    return [event.SerializeToString() for event in history.events]


async def test_history_payloads_are_encrypted_and_the_job_completes(secure: SecureStack) -> None:
    queue = f"{secure.task_queue}-encrypted"
    port = free_port()
    codec_server = HttpService(
        [sys.executable, "-m", "ruckus.cli", "codec-server", "--port", str(port)],
        port,
        secure.root / "codec-server.log",
        {"RUCKUS_PAYLOAD_KEY": PAYLOAD_KEY},
    )
    secure.processes.append(codec_server)
    # Its own agent: every process that touches an agent's queue workflow needs the same key.
    _, api, agent, _ = await asyncio.gather(
        secure.start_worker(
            "worker-encrypted", RUCKUS_PAYLOAD_KEY=PAYLOAD_KEY, RUCKUS_TASK_QUEUE=queue
        ),
        secure.start_api("api-encrypted", RUCKUS_PAYLOAD_KEY=PAYLOAD_KEY, RUCKUS_TASK_QUEUE=queue),
        secure.start_agent("agent-encrypted"),
        codec_server.start_and_wait(),
    )
    marker = f"confidential-plan-{secrets.token_hex(8)}"
    spec = tiny_experiment() | {"name": marker, "description": marker}
    async with api_client(api) as http_:
        agent_id = await register(http_, agent.url)
        job = await run_job(http_, agent_id, spec)
        assert job.status.status is JobStatusEnum.COMPLETED, job.status
        result = (await http_.get(f"/api/v1/results/{job.job_id}")).json()["result"]
        assert result["status"] == "completed" and result["metrics"], result
        # Failure messages are encrypted too, and still reach the job's record intact.
        broken = await secure.start_fake_agent(unique("fake-encrypted"))
        await broken.control(status_mode="garbage")
        failed = await run_job(http_, await register(http_, broken.url))
        assert failed.status.status is JobStatusEnum.FAILED, failed.status
        assert "get_agent_status failed: the agent answered invalid JSON" in failed.status.message

    # What a Temporal operator sees: every payload encrypted, the spec nowhere in clear.
    plain = await secure.temporal.client()
    history = await plain.get_workflow_handle(job.job_id).fetch_history()
    found = [p for event in history.events for p in payloads(event)]
    assert found, "the job's history has payloads"
    for payload in found:
        if payload.metadata["encoding"] != ENCRYPTED_ENCODING:
            # The SDK's own bookkeeping of a local activity (its type, attempt, times) stays
            # readable; its input and result do not.
            assert set(json.loads(payload.data)) >= {"activity_type", "seq"}, payload.data[:300]
    assert sum(p.metadata["encoding"] == ENCRYPTED_ENCODING for p in found) >= 5
    for raw in plain_events(history):
        assert marker.encode() not in raw
    failed_history = await plain.get_workflow_handle(failed.job_id).fetch_history()
    for raw in plain_events(failed_history):
        assert b"answered invalid JSON" not in raw
    with pytest.raises(Exception, match=r"(?i)encoding|decode|binary/encrypted"):
        await plain.get_workflow_handle(job.job_id).result()

    # With the key, the same history decodes to the spec.
    codec = data_converter(PAYLOAD_KEY).payload_codec
    assert codec is not None
    decoded = await codec.decode(found)
    assert any(marker.encode() in p.data for p in decoded)

    # And so does `ruckus codec-server`, the way the web UI asks it.
    body = {"payloads": [json_format.MessageToDict(p) for p in found]}
    ui = {"Origin": "http://localhost:8233", "X-Namespace": "default"}
    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30) as http_:
        answer = await http_.post("/decode", json=body, headers=ui)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8233"
    texts = [base64.b64decode(p.get("data", "")) for p in answer.json()["payloads"]]
    assert len(texts) == len(found) and any(marker.encode() in t for t in texts)


def test_a_malformed_payload_key_is_refused_without_echoing_it() -> None:
    for bad in ("short", base64.b64encode(b"x" * 16).decode(), "not base64!" * 4):
        with pytest.raises(PayloadKeyError) as refused:
            data_converter(bad)
        assert bad not in str(refused.value)
        assert "32 random bytes" in str(refused.value)
