"""/api/v1/experiments: what to run, kept by id."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.dependencies import StorageDep
from api.errors import error_responses
from api.routers import collection_route
from api.schemas import (
    CreateExperimentRequest,
    CreateExperimentResponse,
    DeleteExperimentResponse,
    ExperimentAnswer,
    ExperimentIdPath,
    ExperimentListResponse,
)
from common.models import utcnow

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
    body: CreateExperimentRequest, storage: StorageDep
) -> CreateExperimentResponse:
    """Create an experiment; its `id` is drawn when not given. A taken id: 409."""
    spec = await storage.create_experiment(body.experiment_spec)
    log.info("created experiment %s", spec.id)
    return CreateExperimentResponse(experiment_id=spec.id, created_at=spec.created_at)


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
