"""The server's FastAPI app: one storage and one Temporal client, opened by its lifespan."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api.agent_manager import AgentManager
from api.connections import Connections
from api.console import routes as console
from api.dependencies import api_key_check, require_storage
from api.errors import install_error_handlers
from api.job_manager import JobManager
from api.middleware import LoggedCORS, RejectControlCharacters
from api.routers import (
    agents,
    callbacks,
    comparison,
    experiments,
    health,
    job_follow,
    jobs,
    results,
    runs,
)
from common.body_limit import BodySizeLimit
from common.callbacks import CallbackSigner
from common.server_errors import JsonServerErrors
from common.settings import JobManagerSettings, ServerSettings, StorageSettings, reveal
from common.storage import StorageBackend, create_storage

log = logging.getLogger(__name__)

STORAGE_CLOSE_TIMEOUT_S = 10.0

DESCRIPTION = """\
Ruckus runs ML benchmark **experiments** on registered **agents**; each **job** (one
experiment on one agent) is a durable Temporal workflow.

Errors answer `{"detail": "..."}`: 404 unknown id, 409 conflict, 422 invalid request,
503 storage or Temporal unreachable (try again shortly). When the server has an API key
(`RUCKUS_API_KEY`), send `Authorization: Bearer <key>` on every call but `/health`.
"""


def _version() -> str:
    try:
        return importlib.metadata.version("ruckus")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


async def _bounded(close: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Close within `seconds`: a database that stopped answering must not hold up shutdown."""
    try:
        async with asyncio.timeout(seconds):
            await close()
    except TimeoutError:
        log.warning("storage did not close within %g s; leaving it", seconds)


def create_app(
    settings: ServerSettings | None = None,
    *,
    storage: StorageBackend | None = None,
    temporal_client: Client | None = None,
    storage_settings: StorageSettings | None = None,
    job_settings: JobManagerSettings | None = None,
) -> FastAPI:
    """The API; a given storage or client is used as is and left open, else the app owns its own."""
    settings = settings or ServerSettings()
    job_settings = job_settings or JobManagerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Started in order, stopped in reverse: storage, Temporal and the JobManager, the
        # AgentManager.
        async with AsyncExitStack() as stack:
            store = storage or create_storage(storage_settings or StorageSettings())
            if storage is None:
                stack.push_async_callback(_bounded, store.close, STORAGE_CLOSE_TIMEOUT_S)
            job_manager = JobManager(store, temporal_client, job_settings)
            stack.push_async_callback(job_manager.stop)
            connections = Connections(
                store,
                job_manager,
                retry_interval=settings.dependency_retry_interval,
                storage_ready=storage is not None,
            )
            await connections.start()
            stack.push_async_callback(connections.stop)
            agent_manager = AgentManager(
                store, job_manager, settings, job_settings, connections.require_temporal
            )
            await agent_manager.start()
            stack.push_async_callback(agent_manager.stop)

            app.state.storage = store
            app.state.callback_signer = CallbackSigner(store, reveal(job_settings.callback_secret))
            app.state.connections = connections
            app.state.job_manager = job_manager
            app.state.agent_manager = agent_manager
            yield

    app = FastAPI(
        title="Ruckus server",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.job_settings = job_settings
    # Innermost: whatever escapes the error handlers becomes a JSON 500 that CORS still dresses.
    app.add_middleware(JsonServerErrors)
    app.add_middleware(RejectControlCharacters)
    # Outside everything but CORS (so a browser can read the 413): refused before any read.
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(
        LoggedCORS,
        allow_origins=settings.allowed_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    install_error_handlers(
        app,
        retry_after=settings.dependency_retry_interval,
        on_temporal_down=lambda reason: app.state.connections.temporal_failed(reason),
    )
    guarded = [Depends(api_key_check(settings)), Depends(require_storage)]
    app.include_router(health.router)
    # Agents call back with a per-job signed token instead of the API key.
    app.include_router(callbacks.router)
    for area in (agents, experiments, jobs, job_follow, results, runs, comparison):
        app.include_router(area.router, dependencies=guarded)
    app.include_router(console.router)
    app.include_router(console.guarded_router, dependencies=guarded)
    app.mount("/console/static", StaticFiles(directory=console.STATIC), name="console-static")
    return app
