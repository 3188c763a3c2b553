"""Connecting to Temporal the way Temporal's own tools do, and the search attributes we use."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile

AGENT_ID_KEY = SearchAttributeKey.for_keyword("RuckusAgentId")
EXPERIMENT_ID_KEY = SearchAttributeKey.for_keyword("RuckusExperimentId")
JOB_STATUS_KEY = SearchAttributeKey.for_keyword("RuckusJobStatus")
SEARCH_ATTRIBUTES = (AGENT_ID_KEY, EXPERIMENT_ID_KEY, JOB_STATUS_KEY)

DEFAULT_ADDRESS = "localhost:7233"


async def connect_temporal(namespace: str | None = None) -> Client:
    """A client from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS and profiles."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if namespace:
        config["namespace"] = namespace
    return await Client.connect(**config, data_converter=pydantic_data_converter)
