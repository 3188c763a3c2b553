"""Contract: registered agents and experiments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from common.models import (
    AgentStatusEnum,
    AgentType,
    ExperimentSpec,
    JobStatusEnum,
    RegisteredAgentInfo,
    TaskSpec,
    TaskType,
)
from common.storage import AlreadyExistsError, ConflictError, NotFoundError, StorageBackend
from tests.storage.helpers import make_job, status_of


def agent(agent_id: str, minutes: int = 0) -> RegisteredAgentInfo:
    return RegisteredAgentInfo(
        agent_id=agent_id,
        agent_name=f"{agent_id} box",
        agent_type=AgentType.GRAY_BOX,
        system_info={"gpus": [{"name": "A100", "memory_gb": 80}]},
        capabilities={"frameworks": ["vllm"]},
        agent_url=f"http://{agent_id}.example:8081",
        registered_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        last_updated=datetime(2025, 1, 1, tzinfo=UTC),
    )


def experiment(experiment_id: str, minutes: int = 0) -> ExperimentSpec:
    return ExperimentSpec(
        id=experiment_id,
        name=f"{experiment_id} run",
        model="llama-3-8b",
        task=TaskSpec(name="chat", type=TaskType.LLM_GENERATION, params={"max_tokens": 64}),
        created_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
        owner="bench-team",  # an extra field a user wrote: kept
    )


async def test_agents_register_get_list_update_remove(storage: StorageBackend) -> None:
    await storage.register_agent(agent("b", minutes=1))
    await storage.register_agent(agent("a", minutes=2))

    assert await storage.get_agent("b") == agent("b", minutes=1)
    assert [a.agent_id for a in await storage.list_agents()] == ["b", "a"]

    await storage.update_agent_status("a", AgentStatusEnum.UNAVAILABLE)
    assert (await storage.get_agent("a")).status is AgentStatusEnum.UNAVAILABLE
    assert (await storage.get_agent("b")).status is AgentStatusEnum.IDLE

    await storage.remove_agent("a")
    assert [a.agent_id for a in await storage.list_agents()] == ["b"]
    with pytest.raises(NotFoundError):
        await storage.get_agent("a")


async def test_an_agent_moved_to_a_new_url_keeps_its_registration_time(
    storage: StorageBackend,
) -> None:
    await storage.register_agent(agent("a", minutes=1))
    await storage.register_agent(agent("b", minutes=2))
    await storage.update_agent_status("a", AgentStatusEnum.UNAVAILABLE)
    moved = agent("a", minutes=30).model_copy(
        update={"agent_url": "http://elsewhere:9000", "labels": {"gpu": "a100", "site": "lab"}}
    )

    await storage.update_agent(moved)

    stored = await storage.get_agent("a")
    assert stored.agent_url == "http://elsewhere:9000"
    assert stored.labels == {"gpu": "a100", "site": "lab"}
    assert stored.status is AgentStatusEnum.IDLE  # it answered: it is reachable again
    assert stored.registered_at == agent("a", minutes=1).registered_at
    assert [a.agent_id for a in await storage.list_agents()] == ["a", "b"]
    assert (await storage.get_agent("b")).agent_url == agent("b").agent_url
    with pytest.raises(NotFoundError):
        await storage.update_agent(agent("nobody"))


async def test_agent_errors_are_typed(storage: StorageBackend) -> None:
    await storage.register_agent(agent("a"))
    with pytest.raises(AlreadyExistsError):
        await storage.register_agent(agent("a", minutes=5))
    assert (await storage.get_agent("a")).registered_at == agent("a").registered_at
    with pytest.raises(NotFoundError):
        await storage.get_agent("nobody")
    with pytest.raises(NotFoundError):
        await storage.update_agent_status("nobody", AgentStatusEnum.ERROR)
    with pytest.raises(NotFoundError):
        await storage.remove_agent("nobody")


async def test_removed_agent_keeps_its_job_history(storage: StorageBackend) -> None:
    await storage.register_agent(agent("agent-1"))
    await storage.create_job(make_job("job_1", JobStatusEnum.COMPLETED))
    await storage.save_experiment_results("exp-1", {"job_id": "job_1", "metrics": {"tps": 3}})

    await storage.remove_agent("agent-1")

    assert (await storage.get_job("job_1")).status.status is JobStatusEnum.COMPLETED
    assert [j.job_id for j in await storage.get_completed_jobs("agent-1")] == ["job_1"]
    assert (await storage.get_job_results("job_1"))["metrics"] == {"tps": 3}
    await storage.register_agent(agent("agent-1"))  # the id can be registered again


async def test_datetimes_come_back_zone_aware_in_utc(storage: StorageBackend) -> None:
    tokyo = timezone(timedelta(hours=9))
    registered = datetime(2025, 6, 1, 21, 30, 0, 123456, tzinfo=tokyo)
    await storage.register_agent(agent("a").model_copy(update={"registered_at": registered}))
    job = make_job("job_1", created=registered, at=registered)
    await storage.create_job(job)

    stored_agent = await storage.get_agent("a")
    stored_job = await storage.get_job("job_1")
    for value in (stored_job.created_time, stored_job.status.timestamp):
        assert value == registered
        assert value.utcoffset() == timedelta(0)
    assert stored_agent.registered_at == registered


async def test_experiments_create_get_list(storage: StorageBackend) -> None:
    created = await storage.create_experiment(experiment("exp-b", minutes=1))
    await storage.create_experiment(experiment("exp-a", minutes=2))

    assert created == experiment("exp-b", minutes=1)
    stored = await storage.get_experiment("exp-b")
    assert stored == experiment("exp-b", minutes=1)
    assert stored.model_extra == {"owner": "bench-team"}
    assert [e.id for e in await storage.list_experiments()] == ["exp-b", "exp-a"]


async def test_experiment_errors_are_typed(storage: StorageBackend) -> None:
    await storage.create_experiment(experiment("exp-1"))
    with pytest.raises(AlreadyExistsError):
        await storage.create_experiment(experiment("exp-1", minutes=9))
    assert (await storage.get_experiment("exp-1")).created_at == experiment("exp-1").created_at
    with pytest.raises(NotFoundError):
        await storage.get_experiment("exp-none")
    with pytest.raises(NotFoundError):
        await storage.delete_experiment("exp-none")


@pytest.mark.parametrize("unfinished", [JobStatusEnum.QUEUED, JobStatusEnum.RUNNING])
async def test_delete_experiment_refused_while_jobs_are_unfinished(
    storage: StorageBackend, unfinished: JobStatusEnum
) -> None:
    await storage.create_experiment(experiment("exp-1"))
    await storage.create_job(make_job("job_done", JobStatusEnum.FAILED))
    await storage.create_job(make_job("job_open", unfinished))

    with pytest.raises(ConflictError, match="queued or running"):
        await storage.delete_experiment("exp-1")
    assert (await storage.get_experiment("exp-1")).id == "exp-1"

    await storage.record_job_status("job_open", status_of(JobStatusEnum.CANCELLED))
    await storage.save_experiment_results("exp-1", {"job_id": "job_done", "error": "oom"})
    await storage.delete_experiment("exp-1")

    with pytest.raises(NotFoundError):
        await storage.get_experiment("exp-1")
    # Finished jobs and their results stay as history.
    assert {j.job_id for j in await storage.list_jobs(experiment_id="exp-1")} == {
        "job_done",
        "job_open",
    }
    assert await storage.list_results("exp-1") == [{"job_id": "job_done", "error": "oom"}]
