"""FastAPI dependencies: the managers in app.state, the API key, and the storage gate."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.agent_manager import AgentManager
from api.connections import Connections
from api.experiment_manager import ExperimentManager
from api.job_manager import JobManager
from common.settings import ServerSettings

_bearer = HTTPBearer(
    auto_error=False,
    description="The server's API key, when RUCKUS_API_KEY is set: `Authorization: Bearer <key>`",
)


# Dependencies are async: FastAPI would run plain functions on its thread pool, per request.
async def _agent_manager(request: Request) -> AgentManager:
    manager: AgentManager = request.app.state.agent_manager
    return manager


async def _experiment_manager(request: Request) -> ExperimentManager:
    manager: ExperimentManager = request.app.state.experiment_manager
    return manager


async def _job_manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.job_manager
    return manager


async def _connections(request: Request) -> Connections:
    connections: Connections = request.app.state.connections
    return connections


AgentManagerDep = Annotated[AgentManager, Depends(_agent_manager)]
ExperimentManagerDep = Annotated[ExperimentManager, Depends(_experiment_manager)]
JobManagerDep = Annotated[JobManager, Depends(_job_manager)]
ConnectionsDep = Annotated[Connections, Depends(_connections)]


async def _open() -> None:
    """No API key is configured: every caller is welcome."""


def api_key_check(settings: ServerSettings) -> Callable[..., Awaitable[None]]:
    """A dependency requiring the configured key as a bearer token; open when none is set."""
    # Without a key the bearer scheme stays out of the OpenAPI schema: it says what is required.
    if settings.api_key is None:
        return _open
    expected = settings.api_key.get_secret_value().encode()

    async def require_api_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a valid API key is required: send `Authorization: Bearer <key>` "
                "with the server's RUCKUS_API_KEY",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_api_key


async def require_storage(connections: ConnectionsDep) -> None:
    """503 while storage has not been reached yet."""
    await connections.require_storage()


async def require_temporal(connections: ConnectionsDep) -> None:
    """503 at once while Temporal is known to be down (it is re-probed first)."""
    await connections.require_temporal()


async def require_temporal_not_known_down(connections: ConnectionsDep) -> None:
    """503 while Temporal is known to be down; no probe of it while it answers."""
    await connections.require_temporal_not_known_down()
