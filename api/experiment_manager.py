"""ExperimentManager: the experiments the server keeps, by id."""

from __future__ import annotations

import logging

from common.models import ExperimentSpec
from common.storage import StorageBackend

log = logging.getLogger(__name__)


class ExperimentManager:
    """Create, read and delete experiments; storage enforces unique ids and unfinished jobs."""

    def __init__(self, storage: StorageBackend) -> None:
        self._storage = storage

    async def start(self) -> None:
        """Nothing to open: kept so every manager has the same lifecycle."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def create_experiment(self, spec: ExperimentSpec) -> ExperimentSpec:
        """Raises AlreadyExistsError for a taken id."""
        created = await self._storage.create_experiment(spec)
        log.info("created experiment %s", created.id)
        return created

    async def list_experiments(self) -> list[ExperimentSpec]:
        return await self._storage.list_experiments()

    async def get_experiment(self, experiment_id: str) -> ExperimentSpec:
        return await self._storage.get_experiment(experiment_id)

    async def delete_experiment(self, experiment_id: str) -> None:
        """Raises ConflictError while the experiment has queued or running jobs."""
        await self._storage.delete_experiment(experiment_id)
        log.info("deleted experiment %s", experiment_id)
