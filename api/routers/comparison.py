"""/api/v1/comparison: completed jobs side by side, by agent or by experiment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from api.dependencies import StorageDep
from api.errors import error_responses
from api.schemas import ID_MAX_LENGTH, ID_PATTERN
from common.comparison import Comparison, MixedComparisonError
from common.comparison.source import compare_jobs, experiment_jobs, jobs_by_id
from common.storage import NotFoundError

router = APIRouter(prefix="/api/v1/comparison", tags=["comparison"])

# Within what an HTTP server takes in a request line (uvicorn: 16 KiB with the rest of it).
MAX_JOB_IDS_CHARS = 8000
_ID = rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{ID_MAX_LENGTH - 1}}}"  # one id, as ID_PATTERN
JOB_IDS_PATTERN = f"^{_ID}(,{_ID})*$"


@router.get("", response_model=Comparison, responses=error_responses(404))
async def compare(
    storage: StorageDep,
    job_ids: Annotated[
        str | None,
        Query(
            max_length=MAX_JOB_IDS_CHARS,
            pattern=JOB_IDS_PATTERN,
            description=f"Job ids joined by commas (at most {MAX_JOB_IDS_CHARS} characters): "
            "one experiment on several agents, or several experiments on one agent",
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

    `job_ids` (of `experiment_id` when both are given: 404 for one that is not), or every job
    of `experiment_id`; neither compares nothing. Unknown job or experiment: 404. Jobs of
    several experiments on several agents: 422.
    """
    if job_ids is not None:
        jobs = await jobs_by_id(storage, job_ids.split(","))
        if stray := [j.job_id for j in jobs if experiment_id not in (None, j.experiment_id)]:
            raise NotFoundError(f"job {stray[0]} is not a job of experiment {experiment_id}")
    elif experiment_id is not None:
        jobs = await experiment_jobs(storage, experiment_id)
    else:
        jobs = []
    try:
        return await compare_jobs(storage, jobs)
    except MixedComparisonError as err:
        raise _invalid("job_ids", str(err)) from err


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the shape of FastAPI's own, naming the query parameter at fault."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": None}]
    )
