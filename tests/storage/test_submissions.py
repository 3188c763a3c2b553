"""The storage a submission relies on: a job recorded with its queue signal, abandoned starts,
idempotency claims and the server's own secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from common.models import JobStatusEnum, utcnow
from common.storage import ConflictError, IdempotencyClaim, SQLStorageBackend
from common.storage.schema import idempotency_keys
from tests.storage.helpers import assert_in_one_set, make_job, status_of

S = JobStatusEnum


async def test_enqueue_records_the_job_with_its_signal_or_not_at_all(
    storage: SQLStorageBackend,
) -> None:
    signalled: list[str] = []

    async def signal() -> None:
        signalled.append("job_1")

    job = make_job("job_1")
    assert await storage.enqueue_job(job, signal) == job
    await assert_in_one_set(storage, "job_1", S.QUEUED)

    async def refused() -> None:
        raise RuntimeError("Temporal did not take the signal")

    with pytest.raises(RuntimeError):
        await storage.enqueue_job(make_job("job_2"), refused)
    assert [j.job_id for j in await storage.get_queued_jobs("agent-1")] == ["job_1"]

    # A repeat signals again and keeps the job's place; an ended job is not signalled.
    assert await storage.enqueue_job(make_job("job_1"), signal) == job
    await storage.record_job_status("job_1", status_of(S.FAILED))
    await storage.enqueue_job(make_job("job_1"), signal)
    assert signalled == ["job_1", "job_1"]
    with pytest.raises(ConflictError):
        await storage.enqueue_job(make_job("job_1", agent_id="agent-2"), signal)


async def test_concurrent_enqueues_queue_in_the_order_they_signalled(
    storage: SQLStorageBackend,
) -> None:
    order: list[str] = []

    def recorder(job_id: str) -> Callable[[], Awaitable[None]]:
        async def signal() -> None:
            await asyncio.sleep(0)
            order.append(job_id)

        return signal

    ids = [f"job_{n:02d}" for n in range(30)]
    await asyncio.gather(*(storage.enqueue_job(make_job(i), recorder(i)) for i in ids))
    assert [j.job_id for j in await storage.get_queued_jobs("agent-1")] == order


async def test_an_abandoned_start_fails_only_a_job_that_never_left_its_queue(
    storage: SQLStorageBackend,
) -> None:
    never_recorded = await storage.abandon_job(make_job("job_1"), "not started")
    assert never_recorded.status.status is S.FAILED
    await assert_in_one_set(storage, "job_1", S.FAILED)

    await storage.create_job(make_job("job_2"))
    assert (await storage.abandon_job(make_job("job_2"), "not started")).status.status is S.FAILED

    await storage.create_job(make_job("job_3", S.ASSIGNED))
    sent = await storage.abandon_job(make_job("job_3"), "not started")
    assert sent.status.status is S.ASSIGNED
    await assert_in_one_set(storage, "job_3", S.ASSIGNED)


async def test_an_idempotency_key_keeps_its_first_claim_and_answer_for_a_day(
    storage: SQLStorageBackend,
) -> None:
    first = IdempotencyClaim(key="k1", scope="jobs", body_hash="h1", resource_id="job_1")
    assert (await storage.claim_idempotency_key(first)).resource_id == "job_1"
    again = first.model_copy(update={"resource_id": "job_2"})
    assert (await storage.claim_idempotency_key(again)).resource_id == "job_1"

    await storage.complete_idempotency_key("k1", {"job_id": "job_1"})
    await storage.complete_idempotency_key("k1", {"job_id": "job_2"})  # the first answer stays
    await storage.forget_idempotency_key("k1")  # an answered key is kept
    assert (await storage.claim_idempotency_key(again)).response == {"job_id": "job_1"}

    # An unanswered claim can be dropped; a claim older than a day is forgotten.
    other = IdempotencyClaim(key="k2", scope="jobs", body_hash="h", resource_id="job_3")
    await storage.claim_idempotency_key(other)
    await storage.forget_idempotency_key("k2")
    fresh = other.model_copy(update={"resource_id": "job_4"})
    assert (await storage.claim_idempotency_key(fresh)).resource_id == "job_4"
    async with storage.engine.begin() as conn:
        day_ago = utcnow() - timedelta(hours=25)
        await conn.execute(update(idempotency_keys).values(created_at=day_ago))
    later = first.model_copy(update={"resource_id": "job_5"})
    assert (await storage.claim_idempotency_key(later)).resource_id == "job_5"


async def test_a_server_secret_is_made_once_for_every_caller(storage: SQLStorageBackend) -> None:
    made = iter(f"secret-{n}" for n in range(100))
    secrets = await asyncio.gather(
        *(storage.server_secret("callback", lambda: next(made)) for _ in range(10))
    )
    assert len(set(secrets)) == 1
    assert await storage.server_secret("callback", lambda: "another") == secrets[0]
