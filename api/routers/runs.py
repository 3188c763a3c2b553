"""/api/v1/runs: one experiment across agents, each job a child of the run's workflow."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, model_validator

from api.dependencies import (
    AgentManagerDep,
    ConnectionsDep,
    JobManagerDep,
    StorageDep,
    require_temporal,
)
from api.errors import error_responses
from api.idempotency import IdempotencyDep
from api.placement import no_fitting_agent
from api.routers import collection_route
from api.run_submission import (
    NoFittingAgentError,
    cancel_run,
    choose_agents,
    run_info,
    start_run,
)
from api.schemas import ID_MAX_LENGTH, ID_PATTERN, ErrorResponse, RequestBody, Selector
from common.comparison import Comparison
from common.comparison.report import render_csv, render_html
from common.comparison.source import compare_jobs
from common.runs import MAX_REPEATS, RUN_ID_PATTERN, RunInfo, RunStatus, new_run_id
from common.settings import JobManagerSettings
from common.storage import NotFoundError, StorageBackend

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

# With MAX_REPEATS, at most 1,000 child workflows open at once (Temporal's default limit: 2,000).
MAX_AGENTS = 50
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]
RunIdPath = Annotated[
    str, Path(pattern=RUN_ID_PATTERN, description="The run's id: run_ and 12 hex digits")
]
AgentList = Annotated[
    list[Id],
    Field(min_length=1, max_length=MAX_AGENTS, json_schema_extra={"uniqueItems": True}),
]


class CreateRunRequest(RequestBody):
    experiment_id: Id
    agents: AgentList | None = Field(
        default=None,
        description="The agents to run on, each once; every fitting, available agent when omitted",
    )
    selector: Selector | None = Field(
        default=None, description="Only agents with these labels (named or not)"
    )
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS, description="Jobs per agent")

    @model_validator(mode="after")
    def _unique_agents(self) -> CreateRunRequest:
        if self.agents is not None and len(set(self.agents)) != len(self.agents):
            raise ValueError("agents: each agent once (use repeats to run it more than once)")
        return self


class RunListResponse(BaseModel):
    runs: list[RunInfo]


def _json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """error_responses for an HTML endpoint: its errors are JSON all the same."""
    return {
        code: {
            "description": entry["description"],
            "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}},
        }
        for code, entry in error_responses(*codes).items()
    }


@collection_route(
    router,
    "POST",
    "",
    response_model=RunInfo,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_temporal)],
    responses=error_responses(400, 404, 409),
)
async def create_run(
    body: CreateRunRequest,
    storage: StorageDep,
    agents: AgentManagerDep,
    manager: JobManagerDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> RunInfo:
    """Run an experiment on several agents, `repeats` jobs each: 201 once every job started.

    Unknown experiment or agent: 404. No agent fits (a named one that cannot run it, a selector
    that matches nothing): 422 with each agent's reason, and nothing is started.
    """
    claim = await idempotency.begin("runs", new_run_id())
    if idempotency.first_answer is not None:
        return RunInfo.model_validate(idempotency.first_answer)
    spec = await storage.get_experiment(body.experiment_id)
    ids = body.agents or [a.agent_id for a in await storage.list_agents()]
    candidates = []
    for agent_id in ids:
        agent = await agents.refresh_if_unavailable(agent_id)
        if agent is None:
            if body.agents:
                raise NotFoundError(f"agent {agent_id} is not registered")
            continue  # unregistered since it was listed
        candidates.append(agent)
    try:
        chosen = choose_agents(spec, candidates, body.selector, all_named=bool(body.agents))
    except NoFittingAgentError as err:
        field = "agents" if body.agents else "selector"
        raise no_fitting_agent(err.reasons, field, spec.id) from err
    if len(chosen) > MAX_AGENTS:
        message = f"{len(chosen)} agents fit; a run takes at most {MAX_AGENTS}: name them or "
        message += "narrow the selector"
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "selector"), "msg": message, "input": None}]
        )
    settings: JobManagerSettings = request.app.state.job_settings
    run = await start_run(
        manager.client,
        settings,
        spec,
        chosen,
        claim.resource_id if claim is not None else new_run_id(),
        body.repeats,
        body.selector,
        join_existing=claim is not None,
    )
    info = await run_info(storage, run)
    await idempotency.answered(info)
    return info


@collection_route(router, "GET", "", response_model=RunListResponse, responses=error_responses())
async def list_runs(
    storage: StorageDep,
    experiment_id: Annotated[
        str | None, Query(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    ] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> RunListResponse:
    """Runs, newest first, each with its jobs."""
    runs = await storage.list_runs(
        experiment_id=experiment_id, status=run_status, limit=limit, offset=offset
    )
    return RunListResponse(runs=[await run_info(storage, run) for run in runs])


@router.get("/{run_id}", response_model=RunInfo, responses=error_responses(404))
async def get_run(
    run_id: RunIdPath,
    storage: StorageDep,
    agents: AgentManagerDep,
    live: Annotated[
        bool,
        Query(description="Running jobs as their agents report them now, stage and progress"),
    ] = False,
) -> RunInfo:
    """The run and its jobs' current statuses, in agent then repeat order.

    Stored statuses change at the jobs' polls; `live` asks each agent that has a job of the run
    on it, so the answer shows what the agents are doing now.
    """
    info = await run_info(storage, await storage.get_run(run_id))
    if not live:
        return info
    return info.model_copy(update={"jobs": await agents.with_live_progress_all(info.jobs)})


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, 409),
)
async def delete_run(
    run_id: RunIdPath, storage: StorageDep, manager: JobManagerDep, connections: ConnectionsDep
) -> Response:
    """Cancel the run: its unfinished jobs are cancelled, then it ends `cancelled`. Ended: 409."""
    await storage.get_run(run_id)  # 404 first
    await connections.require_temporal()
    await cancel_run(manager.client, storage, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/comparison", response_model=Comparison, responses=error_responses(404))
async def get_comparison(run_id: RunIdPath, storage: StorageDep) -> Comparison:
    """The comparison stored when the run ended; while it runs, the one its jobs give so far."""
    return await _comparison(storage, run_id)


@router.get(
    "/{run_id}/report",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/csv": {}}}, **_json_errors(404)},
)
async def get_report(
    run_id: RunIdPath,
    storage: StorageDep,
    report_format: Annotated[
        Literal["html", "csv"], Query(alias="format", description="html (the page) or csv")
    ] = "html",
    download: Annotated[bool, Query(description="Answer as a file to save")] = False,
) -> Response:
    """The comparison as a self-contained HTML page (a chart per metric and the table), or as
    CSV (one line per agent and metric)."""
    run = await storage.get_run(run_id)
    comparison = await _comparison(storage, run_id)
    try:
        name = (await storage.get_experiment(run.experiment_id)).name
    except NotFoundError:
        name = run.experiment_id
    details = [
        ("run", run.run_id),
        ("experiment", f"{name} ({run.experiment_id})"),
        ("status", run.status.value),
        ("repeats per agent", str(run.repeats)),
        ("created", run.created_time.isoformat(timespec="seconds")),
        ("ended", run.ended_time.isoformat(timespec="seconds") if run.ended_time else "-"),
    ]
    headers = (
        {"Content-Disposition": f'attachment; filename="{run.run_id}.{report_format}"'}
        if download
        else None
    )
    if report_format == "csv":
        return Response(render_csv(comparison), media_type="text/csv", headers=headers)
    page = render_html(comparison, title=f"Run {run.run_id}: {name}", details=details)
    return HTMLResponse(page, headers=headers)


async def _comparison(storage: StorageBackend, run_id: str) -> Comparison:
    stored = await storage.get_run_comparison(run_id)
    if stored is not None:
        return stored
    return await compare_jobs(storage, await storage.get_run_jobs(run_id))
