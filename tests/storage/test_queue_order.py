"""Contract: queues keep FIFO order, however many writers append at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

from sqlalchemy import select

from common.models import JobStatusEnum
from common.storage import SQLStorageBackend
from common.storage.schema import jobs
from tests.storage.helpers import assert_in_one_set, make_job, status_of

REPO = Path(__file__).resolve().parents[2]


async def stored_positions(storage: SQLStorageBackend, agent_id: str) -> dict[str, int]:
    query = select(jobs.c.job_id, jobs.c.queue_position).where(
        jobs.c.agent_id == agent_id, jobs.c.job_set == "queued"
    )
    async with storage.engine.connect() as conn:
        return {row.job_id: row.queue_position for row in await conn.execute(query)}


async def assert_fifo_by_position(storage: SQLStorageBackend, expected_ids: set[str]) -> list[str]:
    """Every job queued exactly once, in strictly increasing position order; returns the order."""
    order = [job.job_id for job in await storage.get_queued_jobs("agent-1")]
    assert len(order) == len(set(order)) == len(expected_ids)
    assert set(order) == expected_ids
    positions = await stored_positions(storage, "agent-1")
    in_order = [positions[job_id] for job_id in order]
    assert all(a < b for a, b in itertools.pairwise(in_order))
    return order


async def test_sequential_appends_keep_exact_order(storage: SQLStorageBackend) -> None:
    ids = [f"job_{n:03d}" for n in (5, 3, 9, 1, 7, 2, 8, 4, 6, 0)]  # not the id order
    for job_id in ids:
        await storage.create_job(make_job(job_id))
    assert await assert_fifo_by_position(storage, set(ids)) == ids

    # A job that left the queue and comes back goes last.
    await storage.record_job_status(ids[1], status_of(JobStatusEnum.RUNNING))
    await storage.record_job_status(ids[1], status_of(JobStatusEnum.QUEUED, message="again"))
    expected = [ids[0], *ids[2:], ids[1]]
    assert await assert_fifo_by_position(storage, set(ids)) == expected


async def test_200_concurrent_appends_are_all_queued_once_in_position_order(
    storage: SQLStorageBackend,
) -> None:
    finished: list[str] = []

    async def append(job_id: str) -> None:
        await storage.create_job(make_job(job_id))
        finished.append(job_id)

    ids = [f"job_{n:03d}" for n in range(200)]
    await asyncio.gather(*(append(job_id) for job_id in ids))
    assert sorted(finished) == ids
    order = await assert_fifo_by_position(storage, set(ids))
    for job_id in (order[0], order[-1]):
        await assert_in_one_set(storage, job_id, JobStatusEnum.QUEUED)


async def test_a_later_wave_of_appends_queues_behind_an_earlier_one(
    storage: SQLStorageBackend,
) -> None:
    first = [f"job_a{n:02d}" for n in range(50)]
    second = [f"job_b{n:02d}" for n in range(50)]
    await asyncio.gather(*(storage.create_job(make_job(job_id)) for job_id in first))
    await asyncio.gather(*(storage.create_job(make_job(job_id)) for job_id in second))
    order = await assert_fifo_by_position(storage, {*first, *second})
    assert set(order[:50]) == set(first)


async def test_writer_processes_sharing_one_database(
    storage: SQLStorageBackend, storage_url: str
) -> None:
    """Three processes append to one queue and race for one running slot."""
    names = ("p1", "p2", "p3")
    processes = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.storage.writer_process", storage_url, name, "40"),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in names
    ]
    # Release all three together once they are connected, so their writes interleave.
    for process in processes:
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"
    outputs = await asyncio.wait_for(
        asyncio.gather(*(process.communicate(b"go\n") for process in processes)), 60
    )
    reports = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        reports.append(json.loads(out))

    assert sum(report["got_running_slot"] for report in reports) == 1
    running = await storage.get_running_job("agent-1")
    assert running is not None and running.job_id.endswith("_run")
    queued_ids = {f"job_{name}_{n:02d}" for name in names for n in range(40)}
    order = await assert_fifo_by_position(storage, queued_ids)
    for name in names:  # each process's own appends were sequential
        own = [job_id for job_id in order if job_id.startswith(f"job_{name}_")]
        assert own == sorted(own)
