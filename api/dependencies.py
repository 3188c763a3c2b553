"""FastAPI dependencies: what the app's lifespan opened, the API key, and the storage gate."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from api.agent_manager import AgentManager
from api.connections import Connections
from api.console.session import cookie_admits
from api.job_manager import JobManager
from common.auth import bearer_check
from common.callbacks import CallbackSigner
from common.settings import ServerSettings
from common.storage import StorageBackend


def _from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering what the app's lifespan put in `app.state.<name>`."""

    # Async: FastAPI would run a plain function on its thread pool, per request.
    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


StorageDep = Annotated[StorageBackend, Depends(_from_state("storage"))]
AgentManagerDep = Annotated[AgentManager, Depends(_from_state("agent_manager"))]
JobManagerDep = Annotated[JobManager, Depends(_from_state("job_manager"))]
ConnectionsDep = Annotated[Connections, Depends(_from_state("connections"))]
CallbackSignerDep = Annotated[CallbackSigner, Depends(_from_state("callback_signer"))]


def api_key_check(settings: ServerSettings) -> Callable[..., Awaitable[None]]:
    """A dependency requiring the configured API key as a bearer token or the console's session
    cookie; open when none is set."""
    key = settings.api_key
    return bearer_check(
        key,
        refusal="a valid API key is required: send `Authorization: Bearer <key>` "
        "with the server's RUCKUS_API_KEY",
        description="The server's API key, when RUCKUS_API_KEY is set: "
        "`Authorization: Bearer <key>`",
        alternative=None if key is None else functools.partial(cookie_admits, key),
    )


async def require_storage(connections: ConnectionsDep) -> None:
    """503 while storage has not been reached yet."""
    await connections.require_storage()


async def require_temporal(connections: ConnectionsDep) -> None:
    """503 at once while Temporal is known to be down (it is re-probed first)."""
    await connections.require_temporal()


async def require_temporal_not_known_down(connections: ConnectionsDep) -> None:
    """503 while Temporal is known to be down; no probe of it while it answers."""
    await connections.require_temporal_not_known_down()
