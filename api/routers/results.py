"""/api/v1/results: what finished jobs left, as their agents reported it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import StorageDep
from api.errors import error_responses
from api.routers import collection_route
from api.schemas import ID_MAX_LENGTH, ID_PATTERN, JobIdPath, ResultAnswer, ResultListResponse
from common.storage import NotFoundError

router = APIRouter(prefix="/api/v1/results", tags=["results"])


@collection_route(router, "GET", "", response_model=ResultListResponse, responses=error_responses())
async def list_results(
    storage: StorageDep,
    experiment_id: Annotated[
        str | None,
        Query(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="Only this experiment's"),
    ] = None,
) -> ResultListResponse:
    """Stored results, oldest saved first."""
    return ResultListResponse(results=await storage.list_results(experiment_id))


@router.get("/{job_id}", response_model=ResultAnswer, responses=error_responses(404))
async def get_result(storage: StorageDep, job_id: JobIdPath) -> ResultAnswer:
    """The results of one job; 404 says whether the job is unknown or has none yet."""
    try:
        return ResultAnswer(result=await storage.get_job_results(job_id))
    except NotFoundError:
        job = await storage.get_job(job_id)  # NotFoundError: the job itself is unknown
        raise NotFoundError(
            f"job {job_id} has no results yet: it is {job.status.status.value}"
        ) from None
