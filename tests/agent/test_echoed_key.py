"""An endpoint that echoes the API key back: neither the key nor a prefix of it is kept or shown."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.jobs import submit, wait_for_end
from tests.agent.llm import LLM_API_KEY, llm_experiment, requests_with
from tests.support.processes import AgentProcess, ServiceProcess


def run(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    job_id = submit(client, spec)
    final = wait_for_end(client, job_id, timeout=30)
    result = client.get(f"/api/v1/results/{job_id}")
    assert result.status_code == 200, result.text
    return final, result.json()


def leaks(text: str) -> bool:
    """Whether `text` holds the key or a prefix of it of 8 characters or more."""
    return LLM_API_KEY[:8] in text


def everything_the_agent_kept(agent: AgentProcess) -> dict[str, str]:
    kept = {"agent log": agent.log()}
    for path in Path(agent.data_dir).rglob("*"):
        if path.is_file():
            kept[str(path)] = path.read_bytes().decode(errors="replace")
    return kept


@pytest.mark.parametrize("stream", [False, True])
def test_a_key_echoed_in_model_and_usage_is_masked_in_the_result(
    client: httpx.Client, agent: AgentProcess, fake_llm: ServiceProcess, stream: bool
) -> None:
    marker = f"q{uuid.uuid4().hex[:10]}"
    spec = llm_experiment(fake_llm.url, f"Echo {marker} please", mode="echo_key", stream=stream)

    final, result = run(client, spec)

    assert final["status"] == "completed", final
    (request,) = requests_with(fake_llm.url, marker)
    assert request["authorized"]  # the endpoint had the real key, and sent it back
    output = result["output"]
    assert output["model"] == "fake-chat-model@***"
    assert output["usage"]["api_key"] == "***"
    assert output["usage"]["***"] == 1
    assert output["usage"]["details"] == [{"seen": "Bearer ***"}]
    assert result["model_actual"] == "fake-chat-model@***"
    assert result["metrics"]["output_tokens"] == 4  # "Echo:" and the three words: untouched
    assert not leaks(json.dumps(final)) and not leaks(json.dumps(result))
    # The task's own line names the model the endpoint said it was: masked in the job's log.
    log = client.get(f"/api/v1/jobs/{final['job_id']}/logs").json()
    assert "answer of fake-chat-model@***: " in log["text"] and not leaks(log["text"])
    for where, text in everything_the_agent_kept(agent).items():
        assert not leaks(text), where


def test_an_error_quoting_the_key_past_the_cut_leaves_no_prefix_of_it(
    client: httpx.Client, agent: AgentProcess, fake_llm: ServiceProcess
) -> None:
    marker = f"q{uuid.uuid4().hex[:10]}"
    spec = llm_experiment(fake_llm.url, f"Fail {marker} please", mode="error_echo", stream=False)

    final, result = run(client, spec)

    assert final["status"] == "failed"
    # The endpoint's message is cut at 300 characters, after the key was masked in it.
    assert "key=*** was refused" in final["message"]
    assert "HTTP 500" in result["error"]
    assert not leaks(json.dumps(final)) and not leaks(json.dumps(result))
    status = client.get("/api/v1/status").json()
    assert not leaks(json.dumps(status))
    for where, text in everything_the_agent_kept(agent).items():
        assert not leaks(text), where
