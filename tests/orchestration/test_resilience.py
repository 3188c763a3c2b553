"""A job survives its worker being killed and the Temporal server restarting."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.job_manager import JobManager
from common.models import JobStatusEnum
from common.settings import StorageSettings
from common.storage import StorageBackend, create_storage
from tests.orchestration.conftest import FAST, fast_settings, new_experiment, register
from tests.orchestration.conftest import wait_for_status as wait_status
from tests.support.processes import wait_until
from tests.support.stack import HttpService, ManagedProcess, TemporalDevServer, free_port

RUNNING = (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)


class Stack:
    """A dev server, a worker process and a real agent process, each killable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temporal = TemporalDevServer(root)
        self.settings = fast_settings()
        self.storage_settings = StorageSettings(data_dir=root / "storage")
        env = {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "RUCKUS_STORAGE_DATA_DIR": str(self.storage_settings.data_dir),
            "RUCKUS_TASK_QUEUE": self.settings.task_queue,
            **{f"RUCKUS_{k.upper()}": str(v) for k, v in FAST.items()},
        }
        self.worker = ManagedProcess(
            [sys.executable, "-m", "ruckus.cli", "worker"], root / "worker.log", env
        )
        port = free_port()
        self.agent = HttpService(
            [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(port)],
            port,
            root / "agent.log",
            {"RUCKUS_AGENT_DATA_DIR": str(root / "agent"), "RUCKUS_AGENT_AGENT_ID": "real-1"},
        )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, JobManager, StorageBackend]]:
    s = Stack(tmp_path)
    await s.temporal.start_and_wait()
    storage = create_storage(s.storage_settings)
    await storage.initialize()
    s.worker.start()
    await s.agent.start_and_wait()
    await register(storage, "real-1", s.agent.url)
    manager = JobManager(storage, await s.temporal.client(), s.settings)
    await manager.start()
    yield s, manager, storage
    await manager.stop()
    for proc in (s.worker, s.agent, s.temporal):
        proc.stop()
    await storage.close()


async def _long_job(manager: JobManager, storage: StorageBackend, seconds: float) -> Any:
    exp = await new_experiment(storage, min_duration_seconds=seconds)
    job = await manager.create_job(exp.id, "real-1")
    await wait_status(storage, job.job_id, *RUNNING, timeout=60)
    return job


async def test_worker_killed_while_a_job_runs(
    stack: tuple[Stack, JobManager, StorageBackend],
) -> None:
    s, manager, storage = stack
    job = await _long_job(manager, storage, seconds=4)
    s.worker.kill()
    s.worker.start()
    done = await wait_status(storage, job.job_id, JobStatusEnum.COMPLETED, timeout=90)
    results = await storage.get_job_results(job.job_id)
    assert results["status"] == "completed"
    assert results["metrics"]
    assert done.status.status is JobStatusEnum.COMPLETED
    assert _executions(s, job.job_id) == 1, s.agent.output()[-3000:]


async def test_temporal_server_restarts_on_its_database(
    stack: tuple[Stack, JobManager, StorageBackend],
) -> None:
    s, manager, storage = stack
    job = await _long_job(manager, storage, seconds=4)
    s.temporal.kill()
    await s.temporal.start_and_wait()
    await wait_status(storage, job.job_id, JobStatusEnum.COMPLETED, timeout=120)
    assert (await storage.get_job_results(job.job_id))["status"] == "completed"
    assert _executions(s, job.job_id) == 1


def _executions(s: Stack, job_id: str) -> int:
    """How many runs of this job the agent finished, by its own log.

    The agent logs a job's end just after it reports it, so the line may trail the stored end.
    """

    def ended() -> int:
        return sum(1 for line in s.agent.output().splitlines() if f"job {job_id} ended" in line)

    return wait_until(ended, 30, what=f"the agent's line that job {job_id} ended")
