"""JSON in, JSON out: bodies with NaN or Infinity are a 422, and an unexpected error is a JSON
500 that leaves the connection open (a 500 escaping the app makes the server drop it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def _refuse_constant(name: str) -> Any:
    # Raised as a decode error, FastAPI answers it as an invalid body (422), like any bad JSON.
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class StrictJsonRequest(Request):
    """A request whose JSON body may not hold NaN, Infinity or -Infinity (Python's json does)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=_refuse_constant)
        return self._json


class StrictJsonRoute(APIRoute):
    """A route that reads its body as StrictJsonRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


class JsonServerErrors:
    """ASGI middleware: an exception no handler took becomes a logged JSON 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            logger.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: only closing the connection ends it cleanly
            detail = "internal error: the agent's log has the details"
            await JSONResponse({"detail": detail}, status_code=500)(scope, receive, send)
