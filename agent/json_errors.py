"""JSON in: bodies with NaN or Infinity are a 422 (Python's json reads them)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

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
