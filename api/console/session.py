"""The console's session: a cookie proving the API key was given once, and its CSRF rule."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

COOKIE = "ruckus_session"
# Sent by the console with every request; a cross-site form or image cannot send a header,
# and a cross-site script would need a CORS preflight that is not granted with credentials.
CONSOLE_HEADER = "X-Ruckus-Console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(key: SecretStr) -> str:
    """The cookie's value: derived from the key, so the cookie never holds the key itself."""
    return hmac.new(
        key.get_secret_value().encode(), b"ruckus console session", hashlib.sha256
    ).hexdigest()


def cookie_admits(key: SecretStr, request: Request) -> bool:
    """Whether the request carries a valid session cookie; 403 for a state-changing request
    that has the cookie but not the console's header (a cross-site forgery)."""
    given = request.cookies.get(COOKIE)
    if not given or not hmac.compare_digest(given.encode(), session_token(key).encode()):
        return False
    if request.method not in SAFE_METHODS and request.headers.get(CONSOLE_HEADER) != "1":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"a request that changes something must carry `{CONSOLE_HEADER}: 1` "
            "(or `Authorization: Bearer <key>`): cross-site requests are refused",
        )
    return True
