"""/health: the server is up, and whether storage and Temporal answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.dependencies import ConnectionsDep
from api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health(request: Request, connections: ConnectionsDep) -> HealthResponse:
    """Always 200 while the server runs, open without an API key.

    `status` is `healthy` when storage and Temporal both answer, `degraded` otherwise, and
    `storage` / `temporal` say `ok` or `unavailable: <reason>`. The server keeps serving what
    it can while degraded (reads from storage while Temporal is down), so this is not a 503.
    """
    storage_error, temporal_error = await connections.check()
    return HealthResponse(
        status="healthy" if storage_error is None and temporal_error is None else "degraded",
        version=request.app.version,
        storage=_state(storage_error),
        temporal=_state(temporal_error),
    )


def _state(error: str | None) -> str:
    return "ok" if error is None else f"unavailable: {error}"
