"""The server's durable record of agents, experiments, jobs and results.

The SQL implementation loads on first use, so code that only needs the contract and its errors
(activities, workflow sandboxes) does not import SQLAlchemy and Alembic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.storage.base import (
    AlreadyExistsError,
    ConflictError,
    IdempotencyClaim,
    JobSet,
    NotFoundError,
    StorageBackend,
    StorageError,
    job_set_for,
)

if TYPE_CHECKING:
    from common.settings import StorageSettings
    from common.storage.sql import (
        PostgreSQLStorageBackend,
        SQLiteStorageBackend,
        SQLStorageBackend,
    )

_SQL_NAMES = {"PostgreSQLStorageBackend", "SQLiteStorageBackend", "SQLStorageBackend"}


def create_storage(settings: StorageSettings | None = None) -> StorageBackend:
    """The backend for the configured database URL; call `initialize()` before use."""
    from common.settings import StorageSettings
    from common.storage.engine import database_url
    from common.storage.sql import PostgreSQLStorageBackend, SQLiteStorageBackend

    settings = settings or StorageSettings()
    if database_url(settings).get_backend_name() == "postgresql":
        return PostgreSQLStorageBackend(settings)
    return SQLiteStorageBackend(settings)


def __getattr__(name: str) -> Any:
    if name in _SQL_NAMES:
        from common.storage import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "IdempotencyClaim",
    "JobSet",
    "NotFoundError",
    "PostgreSQLStorageBackend",
    "SQLStorageBackend",
    "SQLiteStorageBackend",
    "StorageBackend",
    "StorageError",
    "create_storage",
    "job_set_for",
]
