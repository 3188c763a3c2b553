"""The worker: runs the job, queue and run workflows with their activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from activities.agent_queue import QueueActivities, grant_agent, release_agent
from activities.job import JobActivities
from activities.run import RunActivities
from common.agent_client import AgentUtility
from common.settings import JobManagerSettings, StorageSettings, reveal
from common.storage import StorageBackend, create_storage
from common.temporal import connect_temporal
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobWorkflow
from workflows.run import RunWorkflow

log = logging.getLogger(__name__)


def workflow_runner() -> WorkflowRunner:
    """Workflows run outside Temporal's sandbox, in Ruckus workers and the benchmark's floor alike.

    The sandbox re-imports a workflow's module for every new workflow and passes every payload
    through it: about a fifth of the worker's CPU per job (`make bench`). The workflows stay
    sandbox-clean: tests replay their histories under the sandboxed runner.
    """
    return UnsandboxedWorkflowRunner()


def build_worker(
    client: Client,
    storage: StorageBackend,
    agents: AgentUtility,
    settings: JobManagerSettings,
) -> Worker:
    job = JobActivities(
        storage, agents, settings.callback_base_url, reveal(settings.callback_secret)
    )
    queue = QueueActivities(storage)
    run = RunActivities(storage)
    return Worker(
        client,
        task_queue=settings.task_queue,
        # A workflow this worker cached goes to any worker once this one has not taken its
        # next task for so long: the cost of a crashed worker's cached workflows.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.worker_sticky_timeout),
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflows=[JobWorkflow, AgentQueueWorkflow, RunWorkflow],
        workflow_runner=workflow_runner(),
        activities=[
            job.dispatch,
            job.get_job_status,
            job.cancel_job,
            job.record_job_status,
            job.end_job,
            queue.join_agent_queue,
            queue.retire_if_closed,
            release_agent,
            grant_agent,
            run.create_run,
            run.record_run_jobs,
            run.end_run,
        ],
    )


async def run_worker(
    settings: JobManagerSettings | None = None, storage_settings: StorageSettings | None = None
) -> None:
    """Connect to Temporal and storage and serve until SIGINT or SIGTERM."""
    settings = settings or JobManagerSettings()
    async with AsyncExitStack() as stack:
        storage = create_storage(storage_settings or StorageSettings())
        await storage.initialize()
        stack.push_async_callback(storage.close)
        agents = AgentUtility.from_settings(settings)
        stack.push_async_callback(agents.aclose)
        client = await connect_temporal(settings.temporal_namespace, settings.payload_key)
        worker = build_worker(client, storage, agents, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker serving task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
