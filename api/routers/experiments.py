"""/api/v1/experiments: what to run, kept by id."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.dependencies import StorageDep
from api.errors import error_responses
from api.idempotency import IdempotencyDep
from api.routers import collection_route
from api.schemas import (
    CreateExperimentRequest,
    CreateExperimentResponse,
    DeleteExperimentResponse,
    ExperimentAnswer,
    ExperimentIdPath,
    ExperimentListResponse,
)
from common.models import ExperimentSpec, utcnow
from common.storage import AlreadyExistsError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])


@collection_route(
    router,
    "POST",
    "/",
    response_model=CreateExperimentResponse,
    responses=error_responses(400, 409),
)
async def create_experiment(
    body: CreateExperimentRequest, storage: StorageDep, idempotency: IdempotencyDep
) -> CreateExperimentResponse:
    """Create an experiment; its `id` is drawn when not given. A taken id: 409.

    With an `Idempotency-Key`, a repeat gets the first answer and makes nothing new.
    """
    claim = await idempotency.begin("experiments", body.experiment_spec.id)
    if idempotency.first_answer is not None:
        return CreateExperimentResponse.model_validate(idempotency.first_answer)
    spec = body.experiment_spec
    if claim is not None:
        spec = spec.model_copy(update={"id": claim.resource_id})
    try:
        spec = await storage.create_experiment(spec)
    except AlreadyExistsError:
        # A concurrent repeat of this very request made it: the same answer, not a 409.
        if claim is None or not _same(await storage.get_experiment(spec.id), spec):
            raise
        spec = await storage.get_experiment(spec.id)
    else:
        log.info("created experiment %s", spec.id)
    answer = CreateExperimentResponse(experiment_id=spec.id, created_at=spec.created_at)
    await idempotency.answered(answer)
    return answer


def _same(stored: ExperimentSpec, spec: ExperimentSpec) -> bool:
    """Whether two specs say the same, whenever each was made."""
    times = {"created_at", "updated_at"}
    return stored.model_dump(exclude=times) == spec.model_dump(exclude=times)


@collection_route(
    router, "GET", "/", response_model=ExperimentListResponse, responses=error_responses()
)
async def list_experiments(storage: StorageDep) -> ExperimentListResponse:
    """Every experiment, oldest first."""
    return ExperimentListResponse(experiments=await storage.list_experiments())


@router.get("/{experiment_id}", response_model=ExperimentAnswer, responses=error_responses(404))
async def get_experiment(experiment_id: ExperimentIdPath, storage: StorageDep) -> ExperimentAnswer:
    """One experiment's spec."""
    return ExperimentAnswer(experiment=await storage.get_experiment(experiment_id))


@router.delete(
    "/{experiment_id}",
    response_model=DeleteExperimentResponse,
    responses=error_responses(404, 409),
)
async def delete_experiment(
    experiment_id: ExperimentIdPath, storage: StorageDep
) -> DeleteExperimentResponse:
    """Delete an experiment; 409 while it has queued or running jobs. Its history stays."""
    await storage.delete_experiment(experiment_id)
    log.info("deleted experiment %s", experiment_id)
    return DeleteExperimentResponse(experiment_id=experiment_id, deleted_at=utcnow())
