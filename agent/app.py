"""The agent's HTTP API (the agent protocol); the work itself is the JobRunner's."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from agent import registration
from agent.json_errors import StrictJsonRoute
from agent.runner import AgentBusyError, AgentUnavailableError, JobRunner
from agent.store import UnreadableRecordError
from agent.system_info import system_info
from agent.tasks import supported_tasks
from common.auth import bearer_check
from common.body_limit import BodySizeLimit
from common.models import (
    JOB_ID_MAX_LENGTH,
    JOB_ID_PATTERN,
    JOB_LOGS_CAPABILITY,
    AgentHealth,
    AgentInfo,
    AgentInfoResponse,
    AgentJobStatus,
    AgentStatus,
    ExecuteJobRequest,
    ExecuteJobResponse,
    JobLog,
    JobResult,
)
from common.server_errors import JsonServerErrors
from common.settings import AgentSettings

JobIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=JOB_ID_MAX_LENGTH,
        pattern=JOB_ID_PATTERN,
        description="The job's id: letters, digits, '_', '-' and '.', starting with a letter "
        "or digit",
    ),
]

LogOffset = Annotated[
    int, Query(ge=0, le=2**40, description="Bytes of the log already read: the last `next_offset`")
]


def _version() -> str:
    try:
        return importlib.metadata.version("ruckus")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class ErrorAnswer(BaseModel):
    detail: str


_ERRORS = {
    400: "The body is not JSON",
    401: "The bearer token is missing or wrong (when the agent has one)",
    404: "No such job on this agent",
    409: "Busy with another job, or the job's results are not ready",
    413: "The request body is larger than the agent accepts",
    500: "The job's record is on disk but cannot be read",
    503: "The agent cannot run jobs (its data directory is unusable)",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers of an endpoint."""
    return {c: {"model": ErrorAnswer, "description": _ERRORS[c]} for c in codes}


def _unknown(job_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job '{job_id}' is not known here")


def _capabilities() -> dict[str, Any]:
    """What this agent can run right now: every task with whether it is available, and why not."""
    tasks = {str(t): task.capability() for t, task in sorted(supported_tasks().items())}
    available = {name: c for name, c in tasks.items() if c.available}
    return {
        "tasks": {name: c.model_dump() for name, c in tasks.items()},
        "task_types": sorted(available),
        "frameworks": sorted({f for c in available.values() for f in c.frameworks}),
        "accepted_frameworks": sorted(
            {f for c in available.values() for f in c.accepted_frameworks}
        ),
        "max_concurrent_jobs": 1,
        "repeated_runs": True,
        "cancel": True,
        "timeout": True,
        JOB_LOGS_CAPABILITY: True,
    }


def create_app(settings: AgentSettings) -> FastAPI:
    """The agent service for these settings; jobs start and stop with the app's lifespan."""
    runner = JobRunner(settings)
    version = _version()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        async with registration.joined(settings, runner.agent_id):
            yield
        await runner.shutdown()

    app = FastAPI(title="Ruckus agent", version=version, lifespan=lifespan)
    app.state.runner = runner
    app.router.route_class = StrictJsonRoute
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(JsonServerErrors, where="the agent's log")

    @app.exception_handler(UnreadableRecordError)
    async def unreadable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    api = APIRouter(
        prefix="/api/v1",
        dependencies=[
            Depends(
                bearer_check(
                    settings.token,
                    refusal="a valid bearer token is required (Authorization: Bearer <token>)",
                    description="The agent's token, when RUCKUS_AGENT_TOKEN is set",
                )
            )
        ],
        responses=_errors(401),
        route_class=StrictJsonRoute,
    )

    @app.get("/health", response_model=AgentHealth)
    async def health() -> AgentHealth:
        """Liveness, open without a token: `degraded` when the agent cannot run jobs."""
        state = "degraded" if runner.problem else "healthy"
        return AgentHealth(status=state, version=version, agent_id=runner.agent_id)

    @api.post(
        "/jobs",
        response_model=ExecuteJobResponse,
        response_model_exclude_none=True,
        responses=_errors(400, 409, 413, 503),
    )
    async def execute_job(request: ExecuteJobRequest) -> ExecuteJobResponse:
        """Start a job. A known job id is not run again: 200 with its `job_status`; but a job
        the agent lost (`error_type` AgentRestarted: it stopped while the job ran) runs again.

        Another job running: 409. The agent cannot run jobs (data dir unusable): 503.
        """
        try:
            record, new = await runner.submit(request)
        except AgentBusyError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
        except AgentUnavailableError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
        # A job id seen before is not run again; the answer carries its current status.
        job_status = None if new else runner.status_answer(record)
        return ExecuteJobResponse(job_id=record.job_id, job_status=job_status)

    @api.get("/status", response_model=AgentStatus)
    async def agent_status() -> AgentStatus:
        """`active` while a job runs, `idle` otherwise, `error` when jobs cannot run.

        `available_results` lists the newest finished jobs (RUCKUS_AGENT_AVAILABLE_RESULTS).
        """
        return runner.agent_status()

    @api.get(
        "/status/{job_id}",
        response_model=AgentJobStatus,
        response_model_exclude_none=True,
        responses=_errors(404, 500),
    )
    async def job_status(job_id: JobIdPath) -> AgentJobStatus:
        """The job's status with its start and end where known; `timestamp` is now.

        Unknown job (never seen, or past retention): 404.
        """
        found = await runner.status_of(job_id)
        if found is None:
            raise _unknown(job_id)
        return found

    @api.get("/jobs/{job_id}/logs", response_model=JobLog, responses=_errors(404, 500))
    async def job_logs(job_id: JobIdPath, offset: LogOffset = 0) -> JobLog:
        """The job's log from `offset` (bytes of UTF-8): at most 256 KiB, cut at a character.

        Follow it by asking again from `next_offset`; `complete` once the job has ended and all
        of it was read. Unknown job: 404.
        """
        found = await runner.log_of(job_id, offset)
        if found is None:
            raise _unknown(job_id)
        return found

    @api.get("/results/{job_id}", response_model=JobResult, responses=_errors(404, 409, 500))
    async def job_result(job_id: JobIdPath) -> JobResult:
        """The result of a finished job, whatever its ending. Unknown: 404; still running: 409."""
        record = await runner.find(job_id)
        if record is None:
            raise _unknown(job_id)
        if record.result is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"results of job '{job_id}' are not ready: it is {record.status.status}",
            )
        return record.result

    @api.delete(
        "/jobs/{job_id}",
        response_model=AgentJobStatus,
        response_model_exclude_none=True,
        responses=_errors(404, 500),
    )
    async def cancel_job(job_id: JobIdPath) -> AgentJobStatus:
        """Stop a running job and answer once its process is gone; a finished job is unchanged."""
        found = await runner.cancel(job_id)
        if found is None:
            raise _unknown(job_id)
        return found

    @api.get("/info", response_model=AgentInfoResponse)
    async def info() -> AgentInfoResponse:
        """This machine (CPU, memory, GPUs, Python, frameworks) and what the agent can run."""
        facts = await asyncio.to_thread(system_info, settings.data_dir)
        capabilities = await asyncio.to_thread(_capabilities)
        agent_info = AgentInfo(
            agent_id=runner.agent_id,
            agent_name=settings.agent_name,
            system_info=facts.model_dump(mode="json"),
            capabilities=capabilities,
            labels=settings.labels,
        )
        return AgentInfoResponse(agent_info=agent_info)

    app.include_router(api)
    return app
