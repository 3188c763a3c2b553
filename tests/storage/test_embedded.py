"""The embedded default: a SQLite file under the data directory, migrated by `ruckus db upgrade`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import text

from common.models import JobStatusEnum
from common.settings import StorageSettings
from common.storage import PostgreSQLStorageBackend, SQLiteStorageBackend, create_storage
from common.storage.migrate import head_revision
from tests.storage.helpers import assert_in_one_set, make_job

REPO = Path(__file__).resolve().parents[2]


async def ruckus_db_upgrade(data_dir: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ruckus.cli", "db", "upgrade"),
        cwd=REPO,
        env={**os.environ, "RUCKUS_STORAGE_DATA_DIR": str(data_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_ruckus_db_upgrade_creates_the_schema_in_a_fresh_sqlite_file(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    code, out = await ruckus_db_upgrade(data_dir)
    assert code == 0, out
    assert f"to {head_revision()}" in out
    assert (data_dir / "ruckus.db").is_file()

    code, out = await ruckus_db_upgrade(data_dir)
    assert code == 0, out
    assert "up to date" in out

    storage = create_storage(StorageSettings(data_dir=data_dir))
    await storage.initialize()
    try:
        await storage.create_job(make_job("job_1", JobStatusEnum.ASSIGNED))
        await assert_in_one_set(storage, "job_1", JobStatusEnum.ASSIGNED)
    finally:
        await storage.close()


async def test_default_storage_is_a_wal_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    storage = create_storage(StorageSettings(data_dir=tmp_path / "new" / "dir"))
    assert isinstance(storage, SQLiteStorageBackend)
    await storage.initialize()
    try:
        assert (tmp_path / "new" / "dir" / "ruckus.db").is_file()
        async with storage.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() > 0
    finally:
        await storage.close()


def test_a_postgresql_url_selects_the_postgresql_backend() -> None:
    settings = StorageSettings(database_url="postgresql://postgres@127.0.0.1:5432/ruckus")
    storage = create_storage(settings)
    assert isinstance(storage, PostgreSQLStorageBackend)
    assert storage.engine.url.drivername == "postgresql+asyncpg"
