"""A job's storage transactions alone: CPU and wall time per call, on SQLite and PostgreSQL.

`python -m bench.storage` (or `make bench-storage`) runs the transactions a job makes in the
worker (join, ASSIGNED, end) and the API's read of a job, each for many jobs, and prints the
process's CPU per call: the worker's share of a job's cost that storage decides.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.models import JobInfo, JobStatus, JobStatusEnum, utcnow
from common.settings import StorageSettings
from common.storage import SQLStorageBackend


async def _nothing() -> None:
    return None


def _job(job_id: str) -> JobInfo:
    queued = JobStatus(status=JobStatusEnum.QUEUED, message="waiting", timestamp=utcnow())
    return JobInfo(
        job_id=job_id,
        experiment_id="exp",
        agent_id=f"agent-{job_id}",  # an agent runs one job at a time: one agent each
        created_time=utcnow(),
        status=queued,
    )


async def _timed(calls: list[Callable[[], Awaitable[object]]]) -> tuple[float, float]:
    """CPU and wall milliseconds per call, the calls run one after another."""
    cpu, wall = time.process_time(), time.perf_counter()
    for call in calls:
        await call()
    n = len(calls)
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


async def measure(storage: SQLStorageBackend, jobs: int) -> dict[str, tuple[float, float]]:
    """Each transaction's CPU and wall ms per call over `jobs` jobs."""
    ids = [f"job_{uuid.uuid4().hex[:12]}" for _ in range(jobs)]

    assigned = JobStatus(status=JobStatusEnum.ASSIGNED, message="sent", timestamp=utcnow())
    completed = JobStatus(
        status=JobStatusEnum.COMPLETED, message="done", timestamp=utcnow() + timedelta(seconds=1)
    )
    return {
        "join (enqueue_job)": await _timed(
            [lambda i=i: storage.enqueue_job(_job(i), _nothing) for i in ids]
        ),
        "ASSIGNED (record_job_status)": await _timed(
            [lambda i=i: storage.record_job_status(i, assigned) for i in ids]
        ),
        "end (record_job_end)": await _timed(
            [
                lambda i=i: storage.record_job_end(i, completed, {"job_id": i, "value": 1.0})
                for i in ids
            ]
        ),
        "read (get_job)": await _timed([lambda i=i: storage.get_job(i) for i in ids]),
    }


async def _postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg

    name = f"ruckus_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


async def run(jobs: int, backends: list[str]) -> Table:
    table = Table(title=f"Storage transactions, {jobs} jobs each, one after another")
    for column in ("backend", "transaction", "CPU per call (ms)", "wall per call (ms)"):
        table.add_column(column)
    for backend in backends:
        drop: Callable[[], Awaitable[None]] = _nothing
        with tempfile.TemporaryDirectory() as scratch:
            if backend == "sqlite":
                url = f"sqlite:///{Path(scratch) / 'ruckus.db'}"
            else:
                url, drop = await _postgres_database()
            storage = SQLStorageBackend(StorageSettings(database_url=url))
            try:
                await storage.initialize()
                await measure(storage, 20)  # warm the pool and the statement caches
                for name, (cpu, wall) in (await measure(storage, jobs)).items():
                    table.add_row(backend, name, f"{cpu:.2f}", f"{wall:.2f}")
            finally:
                await storage.close()
                await drop()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    table = asyncio.run(run(args.jobs, args.backends.split(",")))
    Console().print(table)


if __name__ == "__main__":
    main()
