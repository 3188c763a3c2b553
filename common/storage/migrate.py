"""Bring a database's schema up to date with the Alembic migrations in `common/migrations`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from common.settings import StorageSettings
from common.storage.engine import WRITE_OPTION, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "ruckus_alembic_version"
# Any fixed number: processes starting together on one PostgreSQL migrate one after the other.
_PG_MIGRATION_LOCK = 0x5255434B


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _upgrade(connection: Connection, revision: str) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    return current_revision(connection)


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Apply migrations up to `revision` in one transaction; returns the revision reached."""
    async with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        return await connection.run_sync(_upgrade, revision)


async def upgrade_database(
    settings: StorageSettings | None = None, revision: str = "head"
) -> tuple[str | None, str | None]:
    """Migrate the configured database; returns its revision before and after."""
    engine = create_engine(settings or StorageSettings())
    try:
        async with engine.connect() as connection:
            before = await connection.run_sync(current_revision)
        return before, await upgrade_schema(engine, revision)
    finally:
        await engine.dispose()
