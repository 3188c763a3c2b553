"""ASGI middleware of the API that acts before routing."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import json_error


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
