"""Property-based requests from the OpenAPI schema: no input makes the server fail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.app import create_app
from common.settings import ServerSettings
from tests.api.conftest import Stack
from tests.support.schema_checks import documented_5xx_only, valid_data_accepted
from tests.support.stack import HttpService

KEY = "schema-test-key"

# The schema a server with an API key publishes, generated from the app without starting it;
# the requests go to a real `ruckus api` process with that key.
schema = schemathesis.openapi.from_dict(
    create_app(ServerSettings(api_key=SecretStr(KEY))).openapi()
)


@pytest.fixture(scope="module")
async def schema_api(stack: Stack) -> AsyncIterator[HttpService]:
    # Generated agent URLs point anywhere: fail those registrations fast.
    api = stack.api_process("schema", RUCKUS_API_KEY=KEY, RUCKUS_AGENT_CALL_TIMEOUT="0.5")
    await api.start_and_wait()
    yield api
    api.stop()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_server_fail(
    case: schemathesis.Case, schema_api: HttpService
) -> None:
    case.call_and_validate(
        base_url=schema_api.url,
        headers={
            "Authorization": f"Bearer {KEY}",
            # A key of its own per request: the same key with another body is a documented 422.
            "Idempotency-Key": f"fuzz-{uuid.uuid4()}",
        },
        # The built-in 5xx and acceptance checks are replaced by ours. Negative-data rejection
        # is off: the API accepts what pydantic coerces (an integer timestamp) and ignores
        # unknown query parameters.
        additional_checks=[documented_5xx_only, valid_data_accepted],
        excluded_checks=[
            schemathesis.checks.not_a_server_error,
            negative_data_rejection,
            positive_data_acceptance,
        ],
        timeout=15,
    )
