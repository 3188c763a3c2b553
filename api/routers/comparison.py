"""/api/v1/comparison: completed jobs side by side, by agent or by experiment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.dependencies import StorageDep
from api.errors import error_responses
from api.schemas import ID_MAX_LENGTH, ID_PATTERN, is_valid_id
from common.comparison import Comparison, MixedComparisonError
from common.comparison.source import compare_jobs, experiment_jobs, jobs_by_id

router = APIRouter(prefix="/api/v1/comparison", tags=["comparison"])

MAX_JOB_IDS = 1000


@router.get("", response_model=Comparison, responses=error_responses(404))
async def compare(
    storage: StorageDep,
    job_ids: Annotated[
        str | None,
        Query(
            max_length=MAX_JOB_IDS * (ID_MAX_LENGTH + 1),
            description="Comma-separated job ids: one experiment on several agents, or "
            "several experiments on one agent",
        ),
    ] = None,
    experiment_id: Annotated[
        str | None,
        Query(
            max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="Every job of the experiment"
        ),
    ] = None,
) -> Comparison:
    """Statistics of each metric per agent (or experiment); failed jobs with their error.

    Give `job_ids` or `experiment_id`. Unknown job or experiment: 404. Jobs of several
    experiments on several agents: 422.
    """
    if (job_ids is None) == (experiment_id is None):
        raise _invalid("query", "give either job_ids or experiment_id")
    if experiment_id is not None:
        jobs = await experiment_jobs(storage, experiment_id)
    else:
        assert job_ids is not None
        ids = [part.strip() for part in job_ids.split(",") if part.strip()]
        bad = [job_id for job_id in ids if not is_valid_id(job_id)]
        if not ids or bad or len(ids) > MAX_JOB_IDS:
            why = f"not a job id: {bad[0]!r}" if bad else f"1 to {MAX_JOB_IDS} job ids, by commas"
            raise _invalid("job_ids", why)
        jobs = await jobs_by_id(storage, ids)
    try:
        return await compare_jobs(storage, jobs)
    except MixedComparisonError as err:
        raise _invalid("job_ids", str(err)) from err


def _invalid(field: str, message: str) -> HTTPException:
    """A 422 whose detail starts with the query parameter at fault."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"{field}: {message}")
