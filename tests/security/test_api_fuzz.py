"""The secured server under property-based requests from its schema, then a normal job."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import negative_data_rejection

from api.app import create_app
from common.settings import ServerSettings
from tests.security.conftest import API_KEY, api_client, assert_serves_a_job
from tests.support.stack import HttpService

schema = schemathesis.openapi.from_dict(
    create_app(ServerSettings(api_key=SecretStr(API_KEY))).openapi()
)


# Passed to each call rather than registered: a registered check would apply to every schema
# test of the session (tests/api/test_schema.py registers its own).
def server_answers_no_internal_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """No 500; 502/503 only for an agent or dependency out of reach, with a detail."""
    code = response.status_code
    assert code != 500, f"internal error: {response.text[:500]}"
    if code >= 500:
        assert code in (502, 503), f"undocumented {code}: {response.text[:500]}"
        assert isinstance(response.json().get("detail"), str), response.text[:500]
    return True


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_secured_server_fail(
    case: schemathesis.Case, api: HttpService
) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        # As in tests/api/test_schema.py: 5xx judged by the check above; pydantic coerces.
        additional_checks=[server_answers_no_internal_error],
        excluded_checks=[schemathesis.checks.not_a_server_error, negative_data_rejection],
        timeout=15,
    )


@pytest.fixture
async def api_http(api: HttpService) -> Any:
    async with api_client(api) as http_:
        yield http_


async def test_the_server_still_serves_a_job_afterwards(
    api_http: httpx.AsyncClient, agent_id: str
) -> None:
    await assert_serves_a_job(api_http, agent_id)
