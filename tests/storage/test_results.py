"""Contract: job results of any JSON shape, keyed by job."""

from __future__ import annotations

import math
import secrets

import pytest

from common.models import JobStatusEnum as S
from common.storage import NotFoundError, StorageBackend
from tests.storage.helpers import assert_in_one_set, make_job, status_of


async def test_results_round_trip_whatever_their_shape(storage: StorageBackend) -> None:
    results = {
        "job_id": "job_1",
        "experiment_id": "exp-1",
        "status": "completed",
        "output": [{"prompt": "héllo ✓", "text": "a\u0000b\n", "tokens": [1, 2, 3]}, None, 7.5],
        "metrics": {"throughput": 123.4, "nested": {"deep": {"list": [[], {}]}}, "big": 2**62},
        "started_at": "2025-01-01T00:00:00+00:00",
        "z_first_key": True,
    }
    await storage.save_experiment_results("exp-1", results)
    stored = await storage.get_job_results("job_1")
    assert stored == results
    assert list(stored) == list(results)  # key order kept too


async def test_non_finite_metrics_are_kept(storage: StorageBackend) -> None:
    await storage.save_experiment_results(
        "exp-1", {"job_id": "job_1", "metrics": {"loss": float("nan"), "ppl": float("inf")}}
    )
    metrics = (await storage.get_job_results("job_1"))["metrics"]
    assert math.isnan(metrics["loss"]) and metrics["ppl"] == math.inf


async def test_saving_again_replaces_the_jobs_results(storage: StorageBackend) -> None:
    await storage.save_experiment_results("exp-1", {"job_id": "job_1", "partial": True})
    await storage.save_experiment_results("exp-1", {"job_id": "job_1", "metrics": {"a": 1}})
    assert await storage.get_job_results("job_1") == {"job_id": "job_1", "metrics": {"a": 1}}
    assert await storage.list_results() == [{"job_id": "job_1", "metrics": {"a": 1}}]


async def test_list_results_by_experiment(storage: StorageBackend) -> None:
    for job_id, experiment_id in [("job_1", "exp-1"), ("job_2", "exp-2"), ("job_3", "exp-1")]:
        await storage.save_experiment_results(experiment_id, {"job_id": job_id})
    assert await storage.list_results("exp-1") == [{"job_id": "job_1"}, {"job_id": "job_3"}]
    assert await storage.list_results("exp-2") == [{"job_id": "job_2"}]
    assert await storage.list_results("exp-none") == []
    assert [r["job_id"] for r in await storage.list_results()] == ["job_1", "job_2", "job_3"]


async def test_results_errors(storage: StorageBackend) -> None:
    with pytest.raises(NotFoundError):
        await storage.get_job_results("job_none")
    for missing in ({}, {"job_id": ""}, {"job_id": None}):
        with pytest.raises(ValueError, match="job_id"):
            await storage.save_experiment_results("exp-1", missing)
    assert await storage.list_results() == []


async def test_a_5_mb_result_round_trips(storage: StorageBackend) -> None:
    blob = secrets.token_hex(5 * 1024 * 1024 // 2)  # 5 MB of text
    results = {"job_id": "job_1", "output": {"text": blob, "chunks": [blob[:1000]] * 100}}
    await storage.save_experiment_results("exp-1", results)
    stored = await storage.get_job_results("job_1")
    assert len(stored["output"]["text"]) == 5 * 1024 * 1024
    assert stored == results


async def test_a_jobs_end_stores_its_results_and_final_status_together(
    storage: StorageBackend,
) -> None:
    await storage.create_job(make_job("job_1", S.RUNNING))
    results = {"job_id": "job_1", "metrics": {"a": 1}}
    ended = await storage.record_job_end("job_1", status_of(S.COMPLETED, message="done"), results)
    assert ended.status.status is S.COMPLETED
    await assert_in_one_set(storage, "job_1", S.COMPLETED)
    assert await storage.get_job_results("job_1") == results
    assert await storage.list_results("exp-1") == [results]  # under the job's experiment

    # A job that failed with nothing to show has no results.
    await storage.create_job(make_job("job_2", S.RUNNING))
    await storage.record_job_end("job_2", status_of(S.FAILED, message="lost"), None)
    await assert_in_one_set(storage, "job_2", S.FAILED)
    with pytest.raises(NotFoundError):
        await storage.get_job_results("job_2")


async def test_a_jobs_end_is_all_or_nothing(storage: StorageBackend) -> None:
    with pytest.raises(NotFoundError):
        await storage.record_job_end("job_9", status_of(S.COMPLETED), {"job_id": "job_9"})
    await storage.create_job(make_job("job_1", S.RUNNING))
    with pytest.raises(ValueError, match="job_1"):
        await storage.record_job_end("job_1", status_of(S.COMPLETED), {"job_id": "job_2"})
    assert await storage.list_results() == []
    await assert_in_one_set(storage, "job_1", S.RUNNING)
