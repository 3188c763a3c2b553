"""Contract: initialising, closing, reopening and checking the database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from common.models import JobStatusEnum
from common.settings import StorageSettings
from common.storage import SQLStorageBackend, create_storage
from common.storage.migrate import VERSION_TABLE, current_revision, head_revision
from common.storage.schema import metadata
from tests.storage.helpers import assert_in_one_set, make_job, open_backend


async def test_health_check_is_true_when_the_database_answers(
    storage: SQLStorageBackend,
) -> None:
    assert await storage.health_check() is True


async def test_health_check_is_false_when_the_database_is_down() -> None:
    storage = create_storage(
        StorageSettings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/ruckus")
    )
    assert await storage.health_check() is False
    await storage.close()


async def test_migrations_build_exactly_the_schema_the_code_uses(
    storage: SQLStorageBackend,
) -> None:
    await storage.initialize()  # a second time: nothing to do

    def inspect(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return current_revision(connection), compare_metadata(context, metadata)

    async with storage.engine.connect() as conn:
        revision, differences = await conn.run_sync(inspect)
    assert revision == head_revision()
    assert differences == []


async def test_data_survives_close_and_a_new_backend(
    storage: SQLStorageBackend, storage_url: str
) -> None:
    await storage.create_job(make_job("job_1", JobStatusEnum.RUNNING))
    await storage.create_job(make_job("job_2"))
    await storage.create_job(make_job("job_3"))
    await storage.save_experiment_results("exp-1", {"job_id": "job_0", "metrics": {"x": 1}})
    await storage.close()

    reopened = open_backend(storage_url)
    await reopened.initialize()
    try:
        await assert_in_one_set(reopened, "job_1", JobStatusEnum.RUNNING)
        assert [j.job_id for j in await reopened.get_queued_jobs("agent-1")] == ["job_2", "job_3"]
        assert await reopened.get_job_results("job_0") == {"job_id": "job_0", "metrics": {"x": 1}}
        # The queue continues behind what was there before.
        await reopened.create_job(make_job("job_4"))
        queued = [j.job_id for j in await reopened.get_queued_jobs("agent-1")]
        assert queued == ["job_2", "job_3", "job_4"]
    finally:
        await reopened.close()


async def test_the_schema_refuses_a_second_running_job_with_its_own_index(
    storage: SQLStorageBackend,
) -> None:
    """The index exists under its name on both databases, partial on the running set."""
    if storage.dialect == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE name = 'uq_jobs_one_running_per_agent'"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_jobs_one_running_per_agent'"
    async with storage.engine.connect() as conn:
        definition = (await conn.execute(text(query))).scalar_one()
    assert "UNIQUE" in definition.upper() and "running" in definition
