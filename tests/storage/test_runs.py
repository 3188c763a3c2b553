"""Contract: runs, their jobs in run order, and the comparison kept when they end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.comparison import Comparison, build_comparison
from common.models import JobStatusEnum as S
from common.runs import LabelSelector, RunRecord, RunStatus
from common.storage import AlreadyExistsError, ConflictError, NotFoundError, StorageBackend
from tests.storage.helpers import T0, make_job, status_of


def make_run(run_id: str, minutes: int = 0, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "run_id": run_id,
        "experiment_id": "exp-1",
        "agents": ["agent-1", "agent-2"],
        "repeats": 2,
        "created_time": T0 + timedelta(minutes=minutes),
    }
    return RunRecord.model_validate(values | fields)


async def test_a_run_round_trips(storage: StorageBackend) -> None:
    run = make_run("run_000000000001", selector=LabelSelector(labels={"gpu": "h100"}))
    assert await storage.create_run(run) == run
    stored = await storage.get_run(run.run_id)
    assert stored == run
    assert stored.status is RunStatus.RUNNING and stored.ended_time is None
    assert await storage.get_run_comparison(run.run_id) is None


async def test_run_ids_are_unique_and_unknown_ones_not_found(storage: StorageBackend) -> None:
    await storage.create_run(make_run("run_000000000001"))
    with pytest.raises(AlreadyExistsError, match="run_000000000001"):
        await storage.create_run(make_run("run_000000000001", experiment_id="other"))
    assert (await storage.get_run("run_000000000001")).experiment_id == "exp-1"
    for call in (
        storage.get_run("run_none"),
        storage.get_run_jobs("run_none"),
        storage.get_run_comparison("run_none"),
        storage.record_run_jobs("run_none", ["job_1"]),
        storage.record_run_end(
            "run_none", RunStatus.COMPLETED, Comparison(by="agent", metrics=[], rows=[])
        ),
    ):
        with pytest.raises(NotFoundError, match="run_none"):
            await call


async def test_runs_list_newest_first_with_filters_and_paging(storage: StorageBackend) -> None:
    for i in range(5):
        await storage.create_run(
            make_run(f"run_00000000000{i}", minutes=i, experiment_id=f"exp-{i % 2}")
        )
    await storage.record_run_end(
        "run_000000000003", RunStatus.CANCELLED, Comparison(by="agent", metrics=[], rows=[])
    )
    ids = [r.run_id[-1] for r in await storage.list_runs()]
    assert ids == ["4", "3", "2", "1", "0"]
    assert [r.run_id[-1] for r in await storage.list_runs(limit=2, offset=1)] == ["3", "2"]
    assert [r.run_id[-1] for r in await storage.list_runs(experiment_id="exp-1")] == ["3", "1"]
    assert [r.run_id[-1] for r in await storage.list_runs(status=RunStatus.RUNNING)] == [
        "4",
        "2",
        "1",
        "0",
    ]
    with pytest.raises(ValueError):
        await storage.list_runs(offset=-1)


async def test_a_runs_jobs_come_back_in_run_order(storage: StorageBackend) -> None:
    await storage.create_run(make_run("run_000000000001"))
    # Created in another order than the run's, one on each agent, one of them not yet stored.
    await storage.create_job(make_job("job_b1", S.QUEUED, agent_id="agent-2"))
    await storage.create_job(make_job("job_a1", S.COMPLETED, agent_id="agent-1"))
    order = ["job_a1", "job_a2", "job_b1"]
    run = await storage.record_run_jobs("run_000000000001", order)
    assert run.job_ids == order
    assert await storage.record_run_jobs("run_000000000001", order) == run  # idempotent
    assert (await storage.get_run("run_000000000001")).job_ids == order
    assert [j.job_id for j in await storage.get_run_jobs("run_000000000001")] == [
        "job_a1",
        "job_b1",
    ]
    await storage.create_job(make_job("job_a2", S.QUEUED, agent_id="agent-1"))
    jobs = await storage.get_run_jobs("run_000000000001")
    assert [(j.job_id, j.status.status) for j in jobs] == [
        ("job_a1", S.COMPLETED),
        ("job_a2", S.QUEUED),
        ("job_b1", S.QUEUED),
    ]


async def test_a_run_ends_once_with_its_comparison(storage: StorageBackend) -> None:
    await storage.create_run(make_run("run_000000000001"))
    job = await storage.create_job(make_job("job_a1", S.QUEUED))
    await storage.record_run_jobs("run_000000000001", [job.job_id])
    await storage.record_job_end(
        "job_a1",
        status_of(S.COMPLETED),
        {"job_id": "job_a1", "metrics": {"peak_gflops": 12.5}},
    )
    comparison = build_comparison(
        [await storage.get_job("job_a1")], {"job_a1": await storage.get_job_results("job_a1")}, {}
    )
    with pytest.raises(ValueError):
        await storage.record_run_end("run_000000000001", RunStatus.RUNNING, comparison)

    ended = await storage.record_run_end("run_000000000001", RunStatus.COMPLETED, comparison)
    assert ended.status is RunStatus.COMPLETED and ended.ended_time is not None
    assert await storage.get_run("run_000000000001") == ended
    assert await storage.get_run_comparison("run_000000000001") == comparison
    cell = comparison.rows[0].cells["peak_gflops"]
    assert cell is not None and cell.mean == 12.5

    # Final: a second end (a retried activity, a late cancel) changes nothing.
    empty = Comparison(by="agent", metrics=[], rows=[])
    assert await storage.record_run_end("run_000000000001", RunStatus.CANCELLED, empty) == ended
    assert await storage.get_run_comparison("run_000000000001") == comparison
    with pytest.raises(ConflictError, match="ended"):
        await storage.record_run_jobs("run_000000000001", ["job_other"])
