"""Property-based requests from the agent's OpenAPI schema: no input makes the agent fail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import negative_data_rejection

from agent.app import create_app
from common.settings import AgentSettings
from tests.security.conftest import AGENT_TOKEN, SecureStack, tiny_experiment
from tests.support.processes import wait_until as wait_until_sync
from tests.support.stack import HttpService

# The schema an agent with a token publishes; the requests go to a real agent process.
schema = schemathesis.openapi.from_dict(
    create_app(AgentSettings(token=SecretStr(AGENT_TOKEN))).openapi()
)
AUTH = {"Authorization": f"Bearer {AGENT_TOKEN}"}


@pytest.fixture(scope="module")
async def fuzz_agent(secure: SecureStack) -> HttpService:
    # Generated jobs that do start end within seconds unless their spec says otherwise.
    return await secure.start_agent("agent-fuzz", RUCKUS_AGENT_DEFAULT_TIMEOUT_SECONDS="5")


# Passed to each call rather than registered: a registered check would apply to every schema
# test of the session (tests/api/test_schema.py registers its own).
def agent_answers_no_internal_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """No 500; the one documented 5xx is 503 (the agent cannot run jobs), with a detail."""
    code = response.status_code
    assert code != 500, f"internal error: {response.text[:500]}"
    if code >= 500:
        assert code == 503, f"undocumented {code}: {response.text[:500]}"
        assert isinstance(response.json().get("detail"), str), response.text[:500]
    return True


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_agent_fail(
    case: schemathesis.Case, fuzz_agent: HttpService
) -> None:
    case.call_and_validate(
        base_url=fuzz_agent.url,
        headers=AUTH,
        # 5xx are judged by the check above. Negative-data rejection is off: pydantic coerces
        # some values the schema calls wrong (an integer where a string goes) and that is fine.
        additional_checks=[agent_answers_no_internal_error],
        excluded_checks=[schemathesis.checks.not_a_server_error, negative_data_rejection],
        timeout=15,
    )


def test_the_agent_still_runs_a_job_afterwards(fuzz_agent: HttpService) -> None:
    with httpx.Client(base_url=fuzz_agent.url, headers=AUTH, timeout=15) as http_:
        current = http_.get("/api/v1/status").json()["current_job_id"]
        if current:  # a generated job that is still running is stopped first
            http_.delete(f"/api/v1/jobs/{current}")

        def idle() -> bool:
            return bool(http_.get("/api/v1/status").json()["status"] == "idle")

        wait_until_sync(idle, 20, what="the fuzzed agent idle")
        job = {"job_id": "job_after_fuzz", "experiment_spec": tiny_experiment()}
        assert http_.post("/api/v1/jobs", json=job).status_code == 200

        def ended() -> dict[str, Any] | None:
            status: dict[str, Any] = http_.get("/api/v1/status/job_after_fuzz").json()
            return status if status["status"] not in ("queued", "assigned", "running") else None

        final = wait_until_sync(ended, 30, what="the job after fuzzing to end")
        assert final["status"] == "completed", final
        result = http_.get("/api/v1/results/job_after_fuzz").json()
        assert result["status"] == "completed" and result["metrics"], result
