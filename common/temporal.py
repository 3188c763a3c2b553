"""Connecting to Temporal the way Temporal's own tools do, and the search attributes we use."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.envconfig import ClientConfigProfile

AGENT_ID_KEY = SearchAttributeKey.for_keyword("RuckusAgentId")
EXPERIMENT_ID_KEY = SearchAttributeKey.for_keyword("RuckusExperimentId")
JOB_STATUS_KEY = SearchAttributeKey.for_keyword("RuckusJobStatus")
# On a run's workflow and on each of its jobs: finds a run's jobs.
RUN_ID_KEY = SearchAttributeKey.for_keyword("RuckusRunId")
SEARCH_ATTRIBUTES = (AGENT_ID_KEY, EXPERIMENT_ID_KEY, JOB_STATUS_KEY, RUN_ID_KEY)

DEFAULT_ADDRESS = "localhost:7233"

ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID = b"ruckus-aes-gcm"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """RUCKUS_PAYLOAD_KEY is not the base64 of 32 bytes."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads (data and metadata), so Temporal stores only ciphertext."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(
                metadata={"encoding": ENCRYPTED_ENCODING, "encryption-key-id": KEY_ID},
                data=self._encrypt(p.SerializeToString()),
            )
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for p in payloads:
            # Payloads written before encryption was turned on stay readable.
            if p.metadata.get("encoding") != ENCRYPTED_ENCODING:
                decoded.append(p)
                continue
            if p.metadata.get("encryption-key-id") != KEY_ID:
                raise ValueError("a payload is encrypted with a key this process does not know")
            decoded.append(Payload.FromString(self._decrypt(p.data)))
        return decoded

    def _encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, None)

    def _decrypt(self, data: bytes) -> bytes:
        return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)


def parse_payload_key(key: SecretStr | str) -> bytes:
    """The 32 key bytes of a base64 RUCKUS_PAYLOAD_KEY."""
    text = key.get_secret_value() if isinstance(key, SecretStr) else key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # The value itself is never part of the message.
        raise PayloadKeyError(
            "RUCKUS_PAYLOAD_KEY must be the base64 of 32 random bytes, e.g. the output of "
            "`python -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return raw


def data_converter(payload_key: SecretStr | str | None = None) -> DataConverter:
    """Pydantic payloads; encrypted, failure messages included, when a payload key is given."""
    if payload_key is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(parse_payload_key(payload_key)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_temporal(
    namespace: str | None = None, payload_key: SecretStr | str | None = None
) -> Client:
    """A client from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS and profiles."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if namespace:
        config["namespace"] = namespace
    return await Client.connect(**config, data_converter=data_converter(payload_key))
