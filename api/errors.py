"""Typed errors to HTTP answers: every error is `{"detail": "<what to do>"}` with its status."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.job_manager import SubmissionNotStarted, TemporalUnavailableError
from api.schemas import ErrorResponse
from common.limits import json_safe
from common.storage import AlreadyExistsError, ConflictError, NotFoundError

log = logging.getLogger(__name__)

# RPC answers that mean "Temporal did not answer", not "Temporal refused this request".
UNREACHABLE_CODES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


class StorageUnavailableError(Exception):
    """Storage cannot be reached (yet); the server keeps trying."""


class AgentUnreachableError(Exception):
    """Registration could not read the agent's info; `retryable` says whether trying may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def temporal_unreachable(err: BaseException) -> bool:
    """Whether `err` (or its cause) says Temporal did not answer."""
    cause = err if isinstance(err, RPCError) else err.__cause__
    if isinstance(cause, RPCError):
        return cause.status in UNREACHABLE_CODES
    return True


# SQLSTATE classes of an outage: connection exception, insufficient resources, operator
# intervention (a shutdown or restart), system error.
OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


def database_unreachable(err: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether a driver error says the database went away, rather than refused the request."""
    if err.connection_invalidated:
        return True
    sqlstate = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES:
        return True
    return isinstance(err.orig, ConnectionError | OSError)


def storage_unreachable_detail(err: BaseException) -> str:
    """A short reason for a database failure, without the SQL or its parameters."""
    if isinstance(err, sqlalchemy.exc.DBAPIError) and err.orig is not None:
        err = err.orig
    text = f"{err.__class__.__name__}: {err}".strip().rstrip(":")
    return text.splitlines()[0][:300] if text else err.__class__.__name__


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_error_handlers(
    app: FastAPI, retry_after: float, on_temporal_down: Callable[[str], None]
) -> None:
    """Map the typed errors of storage, the JobManager and registration to their HTTP status."""
    retry = {"Retry-After": str(max(1, math.ceil(retry_after)))}

    def handler(
        fn: Callable[[Exception], Response],
    ) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(_: Request, err: Exception) -> Response:
            return fn(err)

        return handle

    def not_found(err: Exception) -> Response:
        return json_error(404, str(err))

    def conflict(err: Exception) -> Response:
        return json_error(409, str(err))

    def temporal_down(err: Exception) -> Response:
        if isinstance(err, RPCError) and not temporal_unreachable(err):
            log.warning("Temporal refused a request: %s", err)
            return json_error(502, f"Temporal refused the request: {err}")
        detail = str(err) if isinstance(err, TemporalUnavailableError) else None
        detail = detail or f"Temporal is unavailable: {err}"
        on_temporal_down(detail)
        return json_error(
            503, f"{detail}; the server reconnects by itself, try again shortly", retry
        )

    def update_unconfirmed(err: Exception) -> Response:
        log.warning("a job's workflow did not confirm its submission: %s", err)
        return json_error(
            503,
            "Temporal did not confirm the job's submission in time: check that a worker is "
            "running for the task queue; the job may still start once one is",
            retry,
        )

    def not_started(err: Exception) -> Response:
        log.warning("a submission was not confirmed: %s", err)
        return json_error(503, str(err), retry)

    def storage_down(err: Exception) -> Response:
        if isinstance(err, StorageUnavailableError):
            return json_error(503, str(err), retry)
        reason = storage_unreachable_detail(err)
        log.warning("storage failed during a request: %s", reason)
        return json_error(503, f"storage is unavailable: {reason}; try again shortly", retry)

    def database_error(err: Exception) -> Response:
        assert isinstance(err, sqlalchemy.exc.DBAPIError)
        if database_unreachable(err):
            return storage_down(err)
        raise err

    def agent_unreachable(err: Exception) -> Response:
        assert isinstance(err, AgentUnreachableError)
        return json_error(503 if err.retryable else 502, str(err))

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        if err.status_code == 405:
            return _method_not_allowed(request)
        return await http_exception_handler(request, err)

    async def invalid_request(_: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        return JSONResponse({"detail": validation_details(err)}, status_code=422)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)

    table: list[tuple[type[Exception], Callable[[Exception], Response]]] = [
        (NotFoundError, not_found),
        (AlreadyExistsError, conflict),
        (ConflictError, conflict),
        (TemporalUnavailableError, temporal_down),
        (RPCError, temporal_down),
        (WorkflowUpdateRPCTimeoutOrCancelledError, update_unconfirmed),
        (SubmissionNotStarted, not_started),
        (StorageUnavailableError, storage_down),
        # The database did not answer: a lost connection, a refused one, a pool timeout.
        (sqlalchemy.exc.OperationalError, storage_down),
        (sqlalchemy.exc.InterfaceError, storage_down),
        (sqlalchemy.exc.TimeoutError, storage_down),
        (ConnectionError, storage_down),
        (AgentUnreachableError, agent_unreachable),
        # Any other driver error whose cause is the database going away (a restart, a
        # failover): "the database system is shutting down" is an outage, not a bug.
        (sqlalchemy.exc.DBAPIError, database_error),
    ]
    for exc_type, fn in table:
        app.add_exception_handler(exc_type, handler(fn))


def validation_details(err: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's 422 detail, with the echoed input made safe: NaN, deep or huge never make a 500."""
    return [{key: json_safe(value) for key, value in error.items()} for error in err.errors()]


def _method_not_allowed(request: Request) -> Response:
    """405 whose Allow header lists every method of the path, not only its first route's."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            allowed |= set(getattr(route, "methods", None) or ())
    methods = ", ".join(sorted(allowed))
    return json_error(
        405,
        f"{request.method} is not allowed on {request.url.path}; allowed: {methods}",
        {"Allow": methods},
    )


_DESCRIPTIONS = {
    400: "The body is not JSON",
    401: "The API key is missing or wrong (when the server has one)",
    403: "The callback token does not match the job",
    404: "No such agent, experiment, job or result; the detail names it",
    409: "The request conflicts with the current state; the detail says how",
    422: "The request is invalid; the detail names the field",
    502: "The agent or Temporal answered something the server cannot use",
    503: "Storage, Temporal or the agent cannot be reached; try again shortly",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers of an endpoint (401 and 503 apply to all)."""
    wanted = sorted({401, 503, *codes} - {422})
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in wanted}
