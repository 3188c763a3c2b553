"""The bearer-token check of the API (its API key) and of agents (their token)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr


async def _open() -> None:
    """No secret is configured: every caller is welcome."""


def bearer_check(
    secret: SecretStr | None,
    *,
    refusal: str,
    description: str,
    alternative: Callable[[Request], bool] | None = None,
) -> Callable[..., Awaitable[None]]:
    """A dependency requiring `secret` as a bearer token (401 `refusal` otherwise); open when
    the secret is unset, and then the bearer scheme stays out of the OpenAPI schema.

    `alternative` admits a request without the token (it may raise its own refusal)."""
    if secret is None:
        return _open
    expected = secret.get_secret_value().encode()
    scheme = HTTPBearer(auto_error=False, description=description)

    # A default, not Annotated: the annotation is a string that names only module-level types.
    async def require_bearer(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),
    ) -> None:
        # Bytes, compared in constant time: compare_digest refuses non-ASCII str.
        given = credentials.credentials.encode() if credentials is not None else b""
        if hmac.compare_digest(given, expected):
            return
        if credentials is None and alternative is not None and alternative(request):
            return
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=refusal,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return require_bearer
