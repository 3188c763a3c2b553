"""Reads what a comparison needs from storage: jobs, their results, agents and experiments."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from common.comparison.compute import build_comparison
from common.comparison.model import Comparison
from common.models import JobInfo, RegisteredAgentInfo
from common.storage import NotFoundError, StorageBackend

PAGE = 1000
MAX_JOBS = 10_000


async def compare_jobs(storage: StorageBackend, jobs: Sequence[JobInfo]) -> Comparison:
    """The comparison of `jobs` as storage holds them now."""
    results: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job.status.status.is_terminal:
            with contextlib.suppress(NotFoundError):
                results[job.job_id] = await storage.get_job_results(job.job_id)
    agents: dict[str, RegisteredAgentInfo] = {}
    for agent_id in dict.fromkeys(job.agent_id for job in jobs):
        with contextlib.suppress(NotFoundError):
            agents[agent_id] = await storage.get_agent(agent_id)
    names: dict[str, str] = {}
    for experiment_id in dict.fromkeys(job.experiment_id for job in jobs):
        with contextlib.suppress(NotFoundError):
            names[experiment_id] = (await storage.get_experiment(experiment_id)).name
    return build_comparison(jobs, results, agents, names)


async def jobs_by_id(storage: StorageBackend, job_ids: Sequence[str]) -> list[JobInfo]:
    """The jobs in the order given, each once; NotFoundError names the first unknown one."""
    return [await storage.get_job(job_id) for job_id in dict.fromkeys(job_ids)]


async def experiment_jobs(storage: StorageBackend, experiment_id: str) -> list[JobInfo]:
    """Every job of the experiment (at most MAX_JOBS, the newest), oldest first.

    NotFoundError when the experiment is unknown and left no jobs behind.
    """
    jobs: list[JobInfo] = []
    while len(jobs) < MAX_JOBS:
        page = await storage.list_jobs(experiment_id=experiment_id, limit=PAGE, offset=len(jobs))
        jobs += page
        if len(page) < PAGE:
            break
    if not jobs:
        await storage.get_experiment(experiment_id)
    return jobs[::-1]
