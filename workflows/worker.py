"""The worker: runs the job and queue workflows with their activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from activities.agent_calls import AgentActivities
from activities.dispatch import DispatchActivities
from activities.queue import grant_agent, join_agent_queue, release_agent
from activities.storage_writes import StorageActivities
from common.agent_client import AgentUtility
from common.settings import JobManagerSettings, StorageSettings
from common.storage import StorageBackend, create_storage
from common.temporal import connect_temporal
from workflows.agent_queue import AgentQueueWorkflow
from workflows.job import JobWorkflow

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
    secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
    agent_activities = AgentActivities(agents, settings.callback_base_url, secret)
    storage_activities = StorageActivities(storage, agents)
    dispatch = DispatchActivities(agent_activities, storage)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[JobWorkflow, AgentQueueWorkflow],
        workflow_runner=workflow_runner(),
        activities=[
            agent_activities.get_agent_status,
            agent_activities.execute_experiment,
            agent_activities.get_job_status,
            agent_activities.cancel_job,
            dispatch.dispatch,
            storage_activities.record_job_status,
            storage_activities.transfer_results,
            storage_activities.end_job,
            storage_activities.retire_if_closed,
            join_agent_queue,
            release_agent,
            grant_agent,
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
        agents = AgentUtility(
            timeout=settings.agent_call_timeout,
            token=settings.agent_token.get_secret_value() if settings.agent_token else None,
            max_response_bytes=settings.agent_max_response_bytes,
            max_results_bytes=settings.agent_max_results_bytes,
        )
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
