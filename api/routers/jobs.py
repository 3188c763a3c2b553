"""/api/v1/jobs: one experiment on one agent, each a Temporal workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from api.dependencies import (
    AgentManagerDep,
    ConnectionsDep,
    JobManagerDep,
    StorageDep,
    require_temporal,
)
from api.errors import error_responses
from api.idempotency import IdempotencyDep
from api.job_manager import JobAlreadyFinishedError, SubmissionNotStarted
from api.placement import fit_reason, needs_of, no_fitting_agent, place
from api.routers import collection_route
from api.schemas import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    CreatedJob,
    CreateJobRequest,
    JobIdPath,
    JobListResponse,
)
from common.job_ids import JobUtility
from common.models import JobInfo, JobStatusEnum
from common.storage import NotFoundError

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

MAX_OFFSET = 1_000_000_000
IdFilter = Annotated[str | None, Query(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]


@collection_route(
    router,
    "POST",
    "",
    response_model=CreatedJob,
    response_model_exclude_none=True,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_temporal)],
    responses=error_responses(400, 404),
)
async def create_job(
    body: CreateJobRequest,
    storage: StorageDep,
    manager: JobManagerDep,
    agents: AgentManagerDep,
    idempotency: IdempotencyDep,
) -> CreatedJob:
    """Run an experiment on an agent: 201 once the job waits in the agent's queue.

    Without `agent_id`, the fitting agent (capabilities, `selector` labels, available) with
    the fewest running and queued jobs runs it, and `placement` says which and why. An agent
    that cannot run the experiment, or none that can: 422 with the reasons. Unknown experiment
    or agent: 404 naming it. Temporal unreachable, or the start not confirmed in time (the job
    then never runs): 503. With an `Idempotency-Key`, a repeat gets the first answer and the
    same job.
    """
    claim = await idempotency.begin("jobs", JobUtility.generate_job_id())
    if idempotency.first_answer is not None:
        return CreatedJob.model_validate(idempotency.first_answer)
    spec = await storage.get_experiment(body.experiment_id)
    placement = None
    if body.agent_id is None:
        agent, placement = await place(storage, agents, spec, body.selector)
    else:
        agent = await agents.refresh_if_unavailable(body.agent_id)
        if agent is None:
            raise NotFoundError(f"agent {body.agent_id} does not exist")
        why = fit_reason(agent, needs_of(spec), body.selector)
        if why is not None:
            raise no_fitting_agent({agent.agent_id: why}, "agent_id", spec.id)
    try:
        job = await manager.create_job(
            spec.id,
            agent.agent_id,
            agent,
            spec=spec,
            job_id=claim.resource_id if claim is not None else None,
        )
    except SubmissionNotStarted:
        await idempotency.forget()  # that job will never run: a retry submits anew
        raise
    created = CreatedJob(**job.model_dump(), placement=placement)
    await idempotency.answered(created)
    return created


@collection_route(router, "GET", "", response_model=JobListResponse, responses=error_responses())
async def list_jobs(
    storage: StorageDep,
    agent_id: IdFilter = None,
    experiment_id: IdFilter = None,
    job_status: Annotated[
        JobStatusEnum | None, Query(alias="status", description="Only jobs with this status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Jobs per page")] = 100,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Jobs to skip, newest first")
    ] = 0,
) -> JobListResponse:
    """Jobs grouped by agent, newest first; filters and paging apply before grouping."""
    jobs = await storage.list_jobs(
        agent_id=agent_id,
        experiment_id=experiment_id,
        status=job_status,
        limit=limit,
        offset=offset,
    )
    grouped: dict[str, list[JobInfo]] = {}
    for job in jobs:
        grouped.setdefault(job.agent_id, []).append(job)
    return JobListResponse(jobs=grouped)


@router.get("/{job_id}", response_model=JobInfo, responses=error_responses(404))
async def get_job(job_id: JobIdPath, storage: StorageDep) -> JobInfo:
    """The job's last recorded status (the durable record, also while Temporal is down)."""
    return await storage.get_job(job_id)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, 409),
)
async def cancel_job(
    job_id: JobIdPath, storage: StorageDep, manager: JobManagerDep, connections: ConnectionsDep
) -> Response:
    """Cancel a job: a queued one leaves the queue, a running one is stopped on its agent.

    The job ends CANCELLED shortly after this answer. Already finished: 409.
    """
    job = await storage.get_job(job_id)
    if job.status.status.is_terminal:
        raise JobAlreadyFinishedError(
            f"job {job_id} already finished (status {job.status.status.value}): nothing to cancel"
        )
    await connections.require_temporal()
    await manager.cancel_job(job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
