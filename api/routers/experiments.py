"""/api/v1/experiments: what to run, kept by id."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import ExperimentManagerDep
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

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])


@collection_route(
    router,
    "POST",
    "/",
    response_model=CreateExperimentResponse,
    responses=error_responses(400, 409),
)
async def create_experiment(
    body: CreateExperimentRequest, manager: ExperimentManagerDep
) -> CreateExperimentResponse:
    """Create an experiment; its `id` is drawn when not given. A taken id: 409."""
    spec = await manager.create_experiment(body.experiment_spec)
    return CreateExperimentResponse(experiment_id=spec.id, created_at=spec.created_at)


@collection_route(
    router, "GET", "/", response_model=ExperimentListResponse, responses=error_responses()
)
async def list_experiments(manager: ExperimentManagerDep) -> ExperimentListResponse:
    """Every experiment, oldest first."""
    return ExperimentListResponse(experiments=await manager.list_experiments())


@router.get("/{experiment_id}", response_model=ExperimentAnswer, responses=error_responses(404))
async def get_experiment(
    experiment_id: ExperimentIdPath, manager: ExperimentManagerDep
) -> ExperimentAnswer:
    """One experiment's spec."""
    return ExperimentAnswer(experiment=await manager.get_experiment(experiment_id))


@router.delete(
    "/{experiment_id}",
    response_model=DeleteExperimentResponse,
    responses=error_responses(404, 409),
)
async def delete_experiment(
    experiment_id: ExperimentIdPath, manager: ExperimentManagerDep
) -> DeleteExperimentResponse:
    """Delete an experiment; 409 while it has queued or running jobs. Its history stays."""
    await manager.delete_experiment(experiment_id)
    return DeleteExperimentResponse(experiment_id=experiment_id, deleted_at=utcnow())
