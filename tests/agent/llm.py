"""Experiments for the llm_generation task against the fake endpoint, and what it received."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.agent.jobs import experiment

LLM_KEY_ENV = "RUCKUS_TEST_LLM_API_KEY"
# A fresh key per test session, so finding it anywhere cannot be a coincidence.
LLM_API_KEY = f"sk-test-{secrets.token_hex(16)}"
SYSTEM_PROMPT = "Answer in one short sentence."


def llm_experiment(
    endpoint: str,
    user: str,
    *,
    mode: str | None = None,
    framework_params: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A chat experiment; base URL and key variable go in framework params unless overridden."""
    template: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ]
    }
    if mode is not None:
        template["extra_body"] = {"fake_mode": mode}
    task_params = {"prompt_template": template, "request_timeout_seconds": 10, **params}
    spec = experiment("llm_generation", task_params, framework="openai")
    spec["model"] = "fake-chat-model"
    spec["framework"]["params"] = (
        {"base_url": f"{endpoint}/v1", "api_key_env": LLM_KEY_ENV}
        if framework_params is None
        else framework_params
    )
    return spec


def requests_with(endpoint: str, marker: str) -> list[dict[str, Any]]:
    """The chat requests the fake endpoint received whose last message contains `marker`."""
    received = httpx.get(f"{endpoint}/requests", timeout=5).json()
    return [r for r in received if marker in r["body"]["messages"][-1]["content"]]
