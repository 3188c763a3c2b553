"""ASGI middleware of the API and the agent: an exception no handler took becomes a logged
JSON 500 that keeps the connection open (one escaping the app makes the server drop it)."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class JsonServerErrors:
    """`where` names the log that has the details, in the answer."""

    def __init__(self, app: ASGIApp, where: str = "the server's log") -> None:
        self.app = app
        self.detail = f"internal error: {where} has the details"

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
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: only closing the connection ends it cleanly
            await JSONResponse({"detail": self.detail}, status_code=500)(scope, receive, send)
