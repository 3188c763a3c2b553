"""The API's routers, one per area; `collection_route` serves a path with and without its slash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


def collection_route(
    router: APIRouter, method: str, documented: str, **kwargs: Any
) -> Callable[[F], F]:
    """Register an endpoint at `documented` and at its twin with or without a trailing slash.

    Existing clients use both spellings; answering both directly avoids redirects, which drop
    request bodies in some clients and break browser CORS preflights.
    """
    twin = documented.rstrip("/") if documented.endswith("/") else documented + "/"

    def register(endpoint: F) -> F:
        router.add_api_route(documented, endpoint, methods=[method], **kwargs)
        router.add_api_route(twin, endpoint, methods=[method], include_in_schema=False, **kwargs)
        return endpoint

    return register
