"""The server's durable record of agents, experiments, jobs and results."""

from common.storage.base import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    StorageBackend,
    StorageError,
    job_set_for,
)

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "NotFoundError",
    "StorageBackend",
    "StorageError",
    "job_set_for",
]
