"""Signed completion callbacks: the URL an agent calls when a job ends, and its check."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote


def callback_token(secret: str, job_id: str) -> str:
    return hmac.new(secret.encode(), job_id.encode(), hashlib.sha256).hexdigest()


def callback_url(base_url: str, job_id: str, secret: str | None) -> str:
    url = f"{base_url.rstrip('/')}/api/v1/jobs/{quote(job_id, safe='')}/notify"
    return f"{url}?token={callback_token(secret, job_id)}" if secret else url


def token_is_valid(secret: str | None, job_id: str, token: str | None) -> bool:
    """Without a secret every notification is accepted: at worst it causes one early poll."""
    if not secret:
        return True
    if token is None:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a token is whatever the caller sent.
    return hmac.compare_digest(callback_token(secret, job_id).encode(), token.encode())
