"""ASGI middleware of the API that acts before routing."""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import json_error

log = logging.getLogger(__name__)


class RejectControlCharacters:
    """404 for a path with control characters, before routing."""

    # Starlette's route patterns end in `$`, which also matches before a final newline:
    # `/api/v1/experiments/%0A` would otherwise be answered by the experiment list.

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            response = json_error(404, "no such path: it contains control characters")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LoggedCORS(CORSMiddleware):
    """CORS that says in the server log which setting opens it to a refused origin."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(app, **options)
        self._told: set[str] = set()

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        origin = request_headers.get("origin", "")
        refused = response.status_code == 400 and not self.is_allowed_origin(origin)
        # Said once per origin (a bounded number of them): a page retries its preflights.
        if refused and origin not in self._told and len(self._told) < 100:
            self._told.add(origin)
            log.warning(
                "refused a browser's request from origin %s: add it to RUCKUS_CORS_ORIGINS "
                "(a JSON list or comma-separated) to let its pages call the API",
                origin[:200],
            )
        return response
