"""llm_generation against a real OpenAI-compatible server process, through the agent's API."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.tasks.llm_generation import NO_USAGE, NOT_STREAMED
from tests.agent.fake_openai import ERROR_MESSAGE
from tests.agent.jobs import agent_state, submit, wait_for_end
from tests.agent.llm import LLM_API_KEY, LLM_KEY_ENV, SYSTEM_PROMPT, llm_experiment, requests_with
from tests.support.processes import AgentProcess, ServiceProcess, free_port


def run_job(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit, wait for the end; (final status, result)."""
    job_id = submit(client, spec)
    final = wait_for_end(client, job_id, timeout=30)
    result = client.get(f"/api/v1/results/{job_id}")
    assert result.status_code == 200, result.text
    return final, result.json()


def unique_question() -> tuple[str, str]:
    """A user message whose words mark this test's requests; (marker, message)."""
    marker = f"q{uuid.uuid4().hex[:10]}"
    return marker, f"What does {marker} measure today"


def expected_tokens(user: str) -> tuple[int, int]:
    """Prompt and completion tokens as the fake endpoint counts them (words)."""
    return len(SYSTEM_PROMPT.split()) + len(user.split()), 1 + len(user.split())


def assert_key_nowhere(status: dict[str, Any], result: dict[str, Any], agent: AgentProcess) -> None:
    assert LLM_API_KEY not in json.dumps(status)
    assert LLM_API_KEY not in json.dumps(result)
    assert LLM_API_KEY not in agent.log()
    for path in Path(agent.data_dir).rglob("*"):
        if path.is_file():
            assert LLM_API_KEY not in path.read_text(errors="replace"), path


def test_a_non_streamed_answer_with_usage(
    client: httpx.Client, agent: AgentProcess, fake_llm: ServiceProcess
) -> None:
    marker, user = unique_question()
    spec = llm_experiment(fake_llm.url, user, stream=False, max_tokens=64, temperature=0)

    final, result = run_job(client, spec)

    assert final["status"] == "completed", final
    output, metrics = result["output"], result["metrics"]
    assert output["answer"] == f"Echo: {user}"
    assert output["finish_reason"] == "stop"
    assert output["stream"] is False
    assert NOT_STREAMED in output["notes"]
    assert result["model_actual"] == "fake-chat-model"
    prompt_tokens, completion_tokens = expected_tokens(user)
    assert metrics["input_tokens"] == prompt_tokens
    assert metrics["output_tokens"] == completion_tokens
    assert metrics["e2e_latency_seconds"] > 0
    assert metrics["tokens_per_second"] == pytest.approx(
        completion_tokens / metrics["e2e_latency_seconds"]
    )
    assert "ttft_seconds" not in metrics

    # The endpoint got the template's messages, the sampling params and the key from the env.
    (seen,) = requests_with(fake_llm.url, marker)
    assert seen["authorized"] is True
    body = seen["body"]
    assert body["model"] == "fake-chat-model"
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]
    assert (body["stream"], body["max_tokens"], body["temperature"]) == (False, 64, 0)
    assert "stream_options" not in body
    assert_key_nowhere(final, result, agent)


def test_a_streamed_answer_times_first_and_following_tokens(
    client: httpx.Client, agent: AgentProcess, fake_llm: ServiceProcess
) -> None:
    marker, user = unique_question()
    # extra_body reaches the endpoint as part of the request body.
    spec = llm_experiment(fake_llm.url, user, mode="ok")

    final, result = run_job(client, spec)

    assert final["status"] == "completed", final
    output, metrics = result["output"], result["metrics"]
    assert output["answer"] == f"Echo: {user}"
    assert output["stream"] is True
    words = len(output["answer"].split())
    assert output["text_chunks"] == words
    assert 0 < metrics["ttft_seconds"] <= metrics["e2e_latency_seconds"]
    itl = [metrics[f"itl_{q}_seconds"] for q in ("p50", "p90", "p99", "max")]
    assert all(value > 0 for value in itl)
    assert itl == sorted(itl)
    assert metrics["itl_mean_seconds"] > 0
    prompt_tokens, completion_tokens = expected_tokens(user)
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (prompt_tokens, completion_tokens)
    assert metrics["tokens_per_second"] == pytest.approx(
        completion_tokens / metrics["e2e_latency_seconds"]
    )
    decode_seconds = metrics["e2e_latency_seconds"] - metrics["ttft_seconds"]
    assert metrics["decode_tokens_per_second"] == pytest.approx(
        (completion_tokens - 1) / decode_seconds
    )

    (seen,) = requests_with(fake_llm.url, marker)
    assert seen["authorized"] is True
    assert seen["body"]["stream"] is True
    assert seen["body"]["stream_options"] == {"include_usage": True}
    assert seen["body"]["fake_mode"] == "ok"
    assert_key_nowhere(final, result, agent)


@pytest.mark.parametrize(
    ("params", "mode"),
    [
        ({"stream": True}, "no_usage"),
        ({"stream": True, "include_usage": False}, "ok"),
        ({"stream": False}, "no_usage"),
    ],
    ids=["stream-no-usage", "stream-usage-not-asked", "no-stream-no-usage"],
)
def test_without_a_usage_report_token_counts_are_null_and_say_why(
    client: httpx.Client, fake_llm: ServiceProcess, params: dict[str, Any], mode: str
) -> None:
    _, user = unique_question()
    final, result = run_job(client, llm_experiment(fake_llm.url, user, mode=mode, **params))

    assert final["status"] == "completed", final
    metrics = result["metrics"]
    assert result["output"]["answer"] == f"Echo: {user}"
    assert metrics["input_tokens"] is None
    assert metrics["output_tokens"] is None
    assert metrics["tokens_per_second"] is None
    assert NO_USAGE in result["output"]["notes"]
    assert metrics["e2e_latency_seconds"] > 0
    if params["stream"]:
        assert metrics["ttft_seconds"] > 0
        assert metrics["decode_tokens_per_second"] is None


def test_an_endpoint_error_fails_the_job_with_its_message(
    client: httpx.Client, fake_llm: ServiceProcess
) -> None:
    _, user = unique_question()
    final, result = run_job(client, llm_experiment(fake_llm.url, user, mode="error"))

    assert final["status"] == "failed"
    assert "HTTP 500" in final["message"]
    assert ERROR_MESSAGE in final["message"]
    assert result["error_type"] == "TaskError"
    assert agent_state(client)["status"] == "idle"


@pytest.mark.parametrize("stream", [False, True], ids=["no-answer", "stalled-stream"])
def test_a_hanging_endpoint_fails_the_job_within_its_request_timeout(
    client: httpx.Client, fake_llm: ServiceProcess, stream: bool
) -> None:
    _, user = unique_question()
    spec = llm_experiment(
        fake_llm.url, user, mode="hang", stream=stream, request_timeout_seconds=1.5
    )

    final, result = run_job(client, spec)

    assert final["status"] == "failed"
    assert "did not finish answering within the request timeout of 1.5 s" in final["message"]
    # The bound the issue asks for: the request timeout ends the job, not the job deadline.
    # The rest of the margin is the job process starting up.
    assert result["duration_seconds"] < 1.5 + 8


def test_an_inline_api_key_is_refused_and_never_stored(
    client: httpx.Client, agent: AgentProcess, fake_llm: ServiceProcess
) -> None:
    marker, user = unique_question()
    inline = f"sk-inline-{uuid.uuid4().hex}"
    framework_params = {"base_url": f"{fake_llm.url}/v1", "api_key": inline}
    spec = llm_experiment(fake_llm.url, user, framework_params=framework_params)

    final, result = run_job(client, spec)

    assert final["status"] == "failed"
    assert "framework.params.api_key" in final["message"]
    assert "api_key_env" in final["message"]
    assert requests_with(fake_llm.url, marker) == []  # the endpoint was never called
    everything = [json.dumps(final), json.dumps(result), agent.log()]
    files = [p for p in Path(agent.data_dir).rglob("*") if p.is_file()]
    everything += [p.read_text(errors="replace") for p in files]
    assert not any(inline in text for text in everything)


def test_a_key_variable_that_is_not_set_fails_with_the_endpoints_answer_naming_it(
    client: httpx.Client, fake_llm: ServiceProcess
) -> None:
    marker, user = unique_question()
    framework_params = {"base_url": f"{fake_llm.url}/v1", "api_key_env": "RUCKUS_TEST_NO_SUCH_KEY"}
    spec = llm_experiment(fake_llm.url, user, framework_params=framework_params)

    final, _ = run_job(client, spec)

    assert final["status"] == "failed"
    assert "HTTP 401" in final["message"] and "invalid API key" in final["message"]
    assert "RUCKUS_TEST_NO_SUCH_KEY" in final["message"]
    assert "is not set" in final["message"]
    # The request went, without a key: the endpoint's own answer is what failed the job.
    assert [r["authorized"] for r in requests_with(fake_llm.url, marker)] == [False]


def test_an_endpoint_that_needs_no_key_runs_without_the_key_variable(
    client: httpx.Client, tmp_path: Path
) -> None:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "tests.agent.fake_openai:app"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "FAKE_OPENAI_API_KEY"}
    with ServiceProcess(args, port=port, env=env, log_path=tmp_path / "open.log") as keyless:
        marker, user = unique_question()
        framework_params = {
            "base_url": f"{keyless.url}/v1",
            "api_key_env": "RUCKUS_TEST_NO_SUCH_KEY",
        }
        spec = llm_experiment(keyless.url, user, framework_params=framework_params)

        final, result = run_job(client, spec)

        assert final["status"] == "completed", final
        assert result["output"]["answer"] == f"Echo: {user}"
        assert [r["authorized"] for r in requests_with(keyless.url, marker)] == [True]


def test_repeated_requests_report_cold_start_warm_statistics_and_raw_values(
    client: httpx.Client, fake_llm: ServiceProcess
) -> None:
    marker, user = unique_question()
    # Base URL in task params this time (framework params carry only the key's variable).
    spec = llm_experiment(
        fake_llm.url,
        user,
        runs=3,
        base_url=f"{fake_llm.url}/v1",
        framework_params={"api_key_env": LLM_KEY_ENV},
    )

    final, result = run_job(client, spec)

    assert final["status"] == "completed", final
    assert len(requests_with(fake_llm.url, marker)) == 3
    metrics = result["metrics"]
    repeats = metrics["repeats"]
    assert (repeats["runs"], repeats["warm_runs"]) == (3, 2)
    raw = repeats["raw"]
    for name in ("e2e_latency_seconds", "ttft_seconds", "output_tokens", "tokens_per_second"):
        assert len(raw[name]) == 3
        assert repeats["cold_start"][name] == raw[name][0]
        warm = repeats["warm"][name]
        assert warm["count"] == 2
        assert warm["mean"] == pytest.approx(sum(raw[name][1:]) / 2)
        assert warm["min"] == min(raw[name][1:])
        assert warm["max"] == max(raw[name][1:])
        assert metrics[name] == pytest.approx(warm["mean"])
    _, completion_tokens = expected_tokens(user)
    assert raw["output_tokens"] == [completion_tokens] * 3
    assert repeats["warm"]["output_tokens"]["std"] == 0
    answers = [run["answer"] for run in result["output"]["run_outputs"]]
    assert answers == [f"Echo: {user}"] * 3
