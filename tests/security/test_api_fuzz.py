"""The secured server under property-based requests from its schema, then a normal job."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.app import create_app
from common.settings import ServerSettings
from tests.security.conftest import API_KEY, api_client, assert_serves_a_job
from tests.support.schema_checks import documented_5xx_only, valid_data_accepted
from tests.support.stack import HttpService

schema = schemathesis.openapi.from_dict(
    create_app(ServerSettings(api_key=SecretStr(API_KEY))).openapi()
)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_secured_server_fail(
    case: schemathesis.Case, api: HttpService
) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={
            "Authorization": f"Bearer {API_KEY}",
            # A key of its own per request: the same key with another body is a documented 422.
            "Idempotency-Key": f"fuzz-{uuid.uuid4()}",
        },
        # As in tests/api/test_schema.py: 5xx judged by documented_5xx_only; pydantic coerces.
        additional_checks=[documented_5xx_only, valid_data_accepted],
        excluded_checks=[
            schemathesis.checks.not_a_server_error,
            negative_data_rejection,
            positive_data_acceptance,
        ],
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
