"""Signed completion callbacks: the URLs an agent calls when a job ends, and their check.

Callbacks are always signed: with no RUCKUS_CALLBACK_SECRET configured, the first process that
needs one makes a random secret and keeps it in storage, where every API server and worker
finds it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

from common.storage import StorageBackend

SECRET_NAME = "callback"


def callback_token(secret: str, job_id: str) -> str:
    return hmac.new(secret.encode(), job_id.encode(), hashlib.sha256).hexdigest()


def base_urls(configured: str | None) -> list[str]:
    """RUCKUS_CALLBACK_BASE_URL: one URL, or several separated by commas (API servers)."""
    return [url.strip().rstrip("/") for url in (configured or "").split(",") if url.strip()]


class CallbackSigner:
    """Signs a job's callback URLs and checks a callback's token, with one secret."""

    def __init__(self, storage: StorageBackend, configured_secret: str | None = None) -> None:
        self._storage = storage
        self._secret = configured_secret or None

    async def secret(self) -> str:
        if self._secret is None:
            self._secret = await self._storage.server_secret(
                SECRET_NAME, lambda: secrets.token_hex(32)
            )
        return self._secret

    async def urls(self, bases: list[str], job_id: str) -> list[str]:
        """The job's callback URL on each API server, each carrying the job's token."""
        token = callback_token(await self.secret(), job_id)
        path = f"/api/v1/jobs/{quote(job_id, safe='')}/notify?token={token}"
        return [base + path for base in bases]

    async def verify(self, job_id: str, token: str | None) -> bool:
        """Whether `token` is the job's; a token is hex, anything else is refused as is."""
        if token is None or not token.isascii():
            return False
        expected = callback_token(await self.secret(), job_id)
        # Bytes: compare_digest refuses non-ASCII str, and a token is whatever the caller sent.
        return hmac.compare_digest(expected.encode(), token.encode())
