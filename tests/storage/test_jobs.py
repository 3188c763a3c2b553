"""Contract: the four per-agent job sets, status transitions and job queries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from common.models import TERMINAL_JOB_STATUSES, JobInfo, JobStatusEnum
from common.storage import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    SQLStorageBackend,
    StorageBackend,
)
from common.storage.schema import jobs
from tests.storage.helpers import T0, assert_in_one_set, make_job, status_of

S = JobStatusEnum
NON_TERMINAL = [S.QUEUED, S.ASSIGNED, S.RUNNING]


async def updated_at(storage: SQLStorageBackend, job_id: str) -> object:
    async with storage.engine.connect() as conn:
        query = select(jobs.c.updated_at, jobs.c.queue_position).where(jobs.c.job_id == job_id)
        return (await conn.execute(query)).one()


# create_job and get_job


@pytest.mark.parametrize("status", list(S))
async def test_create_job_puts_it_in_the_set_of_its_status(
    storage: StorageBackend, status: JobStatusEnum
) -> None:
    job = make_job("job_1", status, message="from the agent")
    assert await storage.create_job(job) == job
    assert await assert_in_one_set(storage, "job_1", status) == job


async def test_create_job_refuses_a_taken_id_and_keeps_the_first_job(
    storage: StorageBackend,
) -> None:
    first = make_job("job_1", S.RUNNING)
    await storage.create_job(first)
    for clash in (make_job("job_1", S.QUEUED, agent_id="agent-2"), first):
        with pytest.raises(AlreadyExistsError):
            await storage.create_job(clash)
    assert await assert_in_one_set(storage, "job_1", S.RUNNING) == first
    assert await storage.get_queued_jobs("agent-2") == []


async def test_unknown_jobs_raise_not_found(storage: StorageBackend) -> None:
    with pytest.raises(NotFoundError):
        await storage.get_job("job_none")
    with pytest.raises(NotFoundError):
        await storage.record_job_status("job_none", status_of(S.RUNNING))
    with pytest.raises(NotFoundError):
        await storage.remove_queued_job("agent-1", "job_none")


# record_job_status: every kind of transition


@pytest.mark.parametrize(
    "path",
    [
        [S.QUEUED, S.ASSIGNED, S.RUNNING, S.COMPLETED],
        [S.QUEUED, S.RUNNING, S.QUEUED, S.ASSIGNED, S.FAILED],
        [S.ASSIGNED, S.QUEUED, S.CANCELLED],
        [S.RUNNING, S.TIMEOUT],
        [S.QUEUED, S.FAILED],
    ],
    ids=lambda path: "-".join(path),
)
async def test_record_job_status_moves_the_job_to_exactly_one_set(
    storage: StorageBackend, path: list[JobStatusEnum]
) -> None:
    await storage.create_job(make_job("job_1", path[0]))
    await assert_in_one_set(storage, "job_1", path[0])
    for step, status in enumerate(path[1:], start=1):
        new_status = status_of(status, at=T0 + timedelta(minutes=step), message=f"step {step}")
        returned = await storage.record_job_status("job_1", new_status)
        assert returned.status == new_status
        assert await assert_in_one_set(storage, "job_1", status) == returned


async def test_recording_the_same_transition_twice_changes_nothing(
    storage: SQLStorageBackend,
) -> None:
    await storage.create_job(make_job("job_0", S.QUEUED))
    await storage.create_job(make_job("job_1", S.RUNNING))
    queued = status_of(S.QUEUED, at=T0 + timedelta(minutes=5), message="agent busy")
    first = await storage.record_job_status("job_1", queued)
    row = await updated_at(storage, "job_1")

    assert await storage.record_job_status("job_1", queued) == first
    assert await updated_at(storage, "job_1") == row  # nothing written, queue place kept
    assert [j.job_id for j in await storage.get_queued_jobs("agent-1")] == ["job_0", "job_1"]
    await assert_in_one_set(storage, "job_1", S.QUEUED)


async def test_recording_the_same_running_status_twice_changes_nothing(
    storage: SQLStorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.ASSIGNED))
    running = status_of(S.RUNNING, at=T0 + timedelta(minutes=5), message="step 1/10")
    first = await storage.record_job_status("job_1", running)
    row = await updated_at(storage, "job_1")

    assert await storage.record_job_status("job_1", running) == first
    assert await updated_at(storage, "job_1") == row  # nothing written
    await assert_in_one_set(storage, "job_1", S.RUNNING)


async def test_a_newer_status_of_the_same_kind_updates_timestamp_and_message(
    storage: StorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    later = status_of(S.RUNNING, at=T0 + timedelta(hours=1), message="step 40/100")
    await storage.record_job_status("job_1", later)
    assert (await assert_in_one_set(storage, "job_1", S.RUNNING)).status == later


@pytest.mark.parametrize("terminal", sorted(TERMINAL_JOB_STATUSES))
async def test_terminal_states_are_final(storage: StorageBackend, terminal: JobStatusEnum) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    final = await storage.record_job_status("job_1", status_of(terminal, message="the end"))
    for status in S:
        later = status_of(status, at=T0 + timedelta(days=1), message="late report")
        assert await storage.record_job_status("job_1", later) == final
    with pytest.raises(AlreadyExistsError):
        await storage.create_job(make_job("job_1", at=T0 + timedelta(days=1)))
    assert await assert_in_one_set(storage, "job_1", terminal) == final


async def test_concurrent_repeats_of_one_transition_record_it_once(
    storage: StorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    done = status_of(S.COMPLETED, message="ok")
    answers = await asyncio.gather(*(storage.record_job_status("job_1", done) for _ in range(20)))
    assert all(answer.status == done for answer in answers)
    await assert_in_one_set(storage, "job_1", S.COMPLETED)


# One running job per agent


async def test_a_second_running_job_is_refused_by_every_path(storage: SQLStorageBackend) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    await storage.create_job(make_job("job_2", S.QUEUED))

    with pytest.raises(ConflictError, match="job_1"):
        await storage.record_job_status("job_2", status_of(S.ASSIGNED))
    with pytest.raises(ConflictError, match="job_1"):
        await storage.create_job(make_job("job_3", S.ASSIGNED))
    await assert_in_one_set(storage, "job_1", S.RUNNING)
    await assert_in_one_set(storage, "job_2", S.QUEUED)
    with pytest.raises(NotFoundError):
        await storage.get_job("job_3")

    # Another agent may run a job at the same time.
    await storage.create_job(make_job("job_4", S.RUNNING, agent_id="agent-2"))
    # Once job_1 ends, job_2 may run.
    await storage.record_job_status("job_1", status_of(S.COMPLETED))
    await storage.record_job_status("job_2", status_of(S.RUNNING))
    await assert_in_one_set(storage, "job_2", S.RUNNING)


async def test_the_schema_itself_refuses_a_second_running_job(
    storage: SQLStorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    row = {
        "job_id": "job_2",
        "agent_id": "agent-1",
        "experiment_id": "exp-1",
        "created_time": T0,
        "status": "assigned",
        "status_timestamp": T0,
        "status_message": "",
        "job_set": "running",
        "updated_at": T0,
    }
    with pytest.raises(IntegrityError):
        async with storage.engine.begin() as conn:
            await conn.execute(insert(jobs).values(**row))
    # Nor may a row sit in a set its status does not belong to.
    with pytest.raises(IntegrityError):
        async with storage.engine.begin() as conn:
            await conn.execute(insert(jobs).values(**{**row, "job_set": "completed"}))
    assert await storage.list_jobs() == [await storage.get_job("job_1")]


async def test_racing_writers_leave_one_running_job(storage: StorageBackend) -> None:
    candidates = [make_job(f"job_{n}", S.RUNNING) for n in range(12)]
    outcomes = await asyncio.gather(
        *(storage.create_job(job) for job in candidates), return_exceptions=True
    )
    won = [o for o in outcomes if isinstance(o, JobInfo)]
    assert len(won) == 1
    assert all(isinstance(o, ConflictError) for o in outcomes if o not in won)
    winner = won[0]
    assert await storage.get_running_job("agent-1") == winner
    assert len(await storage.list_jobs()) == 1


async def test_remove_queued_job_only_removes_that_agents_queued_job(
    storage: StorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.QUEUED))
    await storage.create_job(make_job("job_2", S.QUEUED))
    await storage.create_job(make_job("job_3", S.RUNNING))
    with pytest.raises(NotFoundError):
        await storage.remove_queued_job("agent-2", "job_1")
    with pytest.raises(NotFoundError):
        await storage.remove_queued_job("agent-1", "job_3")

    await storage.remove_queued_job("agent-1", "job_1")
    with pytest.raises(NotFoundError):
        await storage.remove_queued_job("agent-1", "job_1")
    assert [j.job_id for j in await storage.get_queued_jobs("agent-1")] == ["job_2"]
    await assert_in_one_set(storage, "job_3", S.RUNNING)


# list_jobs


async def test_list_jobs_filters_pages_and_orders_newest_first(storage: StorageBackend) -> None:
    plan = [
        ("job_a", "agent-1", "exp-1", S.COMPLETED, 0),
        ("job_b", "agent-1", "exp-2", S.FAILED, 1),
        ("job_c", "agent-2", "exp-1", S.RUNNING, 2),
        ("job_d", "agent-1", "exp-1", S.QUEUED, 3),
        ("job_e", "agent-2", "exp-2", S.QUEUED, 3),  # same created_time as job_d
        ("job_f", "agent-1", "exp-1", S.CANCELLED, 4),
    ]
    for job_id, agent_id, experiment_id, status, minute in plan:
        created = T0 + timedelta(minutes=minute)
        await storage.create_job(
            make_job(
                job_id, status, agent_id=agent_id, experiment_id=experiment_id, created=created
            )
        )

    async def ids(**filters: object) -> list[str]:
        return [job.job_id for job in await storage.list_jobs(**filters)]  # type: ignore[arg-type]

    assert await ids() == ["job_f", "job_e", "job_d", "job_c", "job_b", "job_a"]
    assert await ids(agent_id="agent-1") == ["job_f", "job_d", "job_b", "job_a"]
    assert await ids(experiment_id="exp-2") == ["job_e", "job_b"]
    assert await ids(status=S.QUEUED) == ["job_e", "job_d"]
    assert await ids(agent_id="agent-1", experiment_id="exp-1", status=S.COMPLETED) == ["job_a"]
    assert await ids(agent_id="agent-3") == []

    pages = [await ids(limit=4, offset=0), await ids(limit=4, offset=4), await ids(offset=8)]
    assert pages == [["job_f", "job_e", "job_d", "job_c"], ["job_b", "job_a"], []]
    assert await ids(agent_id="agent-1", limit=2, offset=1) == ["job_d", "job_b"]
    assert await ids(limit=0) == []
    with pytest.raises(ValueError):
        await storage.list_jobs(offset=-1)


# A job's steps: its timeline


async def test_each_status_is_kept_with_the_time_the_job_first_took_it(
    storage: StorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.QUEUED))
    steps_in_order = (S.ASSIGNED, S.RUNNING, S.COMPLETED)
    at = {s: T0 + timedelta(minutes=2 + i) for i, s in enumerate(steps_in_order)}
    await storage.record_job_status("job_1", status_of(S.ASSIGNED, at=at[S.ASSIGNED]))
    await storage.record_job_status("job_1", status_of(S.RUNNING, at=at[S.RUNNING]))
    # Progress of the running job: a later write of the same status keeps the first time.
    later = status_of(S.RUNNING, at=at[S.RUNNING] + timedelta(seconds=30), message="half way")
    await storage.record_job_status("job_1", later)
    await storage.record_job_end("job_1", status_of(S.COMPLETED, at=at[S.COMPLETED]), None)
    steps = await storage.get_job_steps("job_1")
    assert [(s.status, s.at) for s in steps] == [
        (S.QUEUED, make_job("job_1", S.QUEUED).status.timestamp),
        (S.ASSIGNED, at[S.ASSIGNED]),
        (S.RUNNING, at[S.RUNNING]),
        (S.COMPLETED, at[S.COMPLETED]),
    ]
    assert await storage.get_job_steps("job_none") == []


async def test_a_removed_queued_job_leaves_no_steps(storage: StorageBackend) -> None:
    await storage.create_job(make_job("job_1", S.QUEUED))
    await storage.remove_queued_job("agent-1", "job_1")
    assert await storage.get_job_steps("job_1") == []
