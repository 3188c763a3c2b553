"""What each kind of history element costs the dev server: workflows that differ by one kind.

`python -m bench.elements` (or `make bench-elements`) starts a dev server, runs each variant
`--workflows` at once in interleaved rounds, and prints workflows/s and CPU per workflow of the
dev server and of this process (worker and client). A job's cost is made of these elements
(`bench/RESULTS.md` counts them per job), so the table says which of them a cheaper job must
have fewer of.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table
from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, noop
from bench.stack import CpuMeter, free_port, temporal_child
from common.temporal import JOB_STATUS_KEY
from ruckus.supervisor import Supervisor, temporal_ready
from workflows.worker import workflow_runner

STEP = timedelta(seconds=30)
SIGNAL = "go"


@activity.defn
async def signal_myself(count: int) -> None:
    """Signal this activity's own workflow, as the queue's grant and release do a job's."""
    info = activity.info()
    await activity.client().get_workflow_handle(info.workflow_id).signal(SIGNAL, count)


@workflow.defn
class LocalActivity:
    """The least a workflow can be: one workflow task, one local activity."""

    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)


@workflow.defn
class SignalledTasks:
    """One more workflow task per signal, each signal sent by a local activity."""

    def __init__(self) -> None:
        self.signals = 0

    @workflow.run
    async def run(self, value: str) -> str:
        for count in range(1, int(value) + 1):
            await workflow.execute_local_activity(signal_myself, count, start_to_close_timeout=STEP)
            await workflow.wait_condition(lambda c=count: self.signals >= c)
        return value

    @workflow.signal(name=SIGNAL)
    def go(self, count: int) -> None:
        self.signals = max(self.signals, count)


@workflow.defn
class Upserts:
    """One local activity between two search attribute upserts, in one workflow task."""

    @workflow.run
    async def run(self, value: str) -> str:
        workflow.upsert_search_attributes([JOB_STATUS_KEY.value_set("assigned")])
        await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)
        workflow.upsert_search_attributes([JOB_STATUS_KEY.value_set("completed")])
        return value


@workflow.defn
class LocalActivities:
    """Four local activities, one after another, in one workflow task."""

    @workflow.run
    async def run(self, value: str) -> str:
        for _ in range(4):
            await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)
        return value


@workflow.defn
class CancelledTimer:
    """A timer started and cancelled around one local activity, as a job's poll timer is."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, value: str) -> str:
        async def step() -> None:
            await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)
            self.done = True

        task = asyncio.create_task(step())
        await workflow.wait_condition(lambda: self.done, timeout=60)
        await task
        return value


@workflow.defn
class Submitted:
    """Started with an update, as a job is submitted, then one local activity."""

    def __init__(self) -> None:
        self.accepted = False

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.wait_condition(lambda: self.accepted)
        return await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)

    @workflow.update
    def submit(self) -> str:
        self.accepted = True
        return "accepted"


@workflow.defn
class Told:
    """One local activity, then waits to be told to end: by a signal or by an update."""

    def __init__(self) -> None:
        self.told = False

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.execute_local_activity(noop, value, start_to_close_timeout=STEP)
        await workflow.wait_condition(lambda: self.told)
        return value

    @workflow.signal(name=SIGNAL)
    def tell(self) -> None:
        self.told = True

    @workflow.update
    def told_by_update(self) -> None:
        self.told = True


@dataclass
class Variant:
    name: str
    run: Callable[[Client, str, str], Awaitable[object]]


def started(workflow_type: str, arg: str = "x") -> Callable[[Client, str, str], Awaitable[object]]:
    async def run(client: Client, queue: str, wid: str) -> object:
        return await client.execute_workflow(workflow_type, arg, id=wid, task_queue=queue)

    return run


async def submitted(client: Client, queue: str, wid: str) -> object:
    start = WithStartWorkflowOperation(
        Submitted.run,
        "x",
        id=wid,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await client.execute_update_with_start_workflow(
        Submitted.submit, start_workflow_operation=start
    )
    return await (await start.workflow_handle()).result()


async def told_by_signal(client: Client, queue: str, wid: str) -> object:
    handle = await client.start_workflow(Told.run, "x", id=wid, task_queue=queue)
    await handle.signal(Told.tell)
    return await handle.result()


async def told_by_update(client: Client, queue: str, wid: str) -> object:
    handle = await client.start_workflow(Told.run, "x", id=wid, task_queue=queue)
    await handle.execute_update(Told.told_by_update)
    return await handle.result()


VARIANTS = [
    Variant("one local activity (1 workflow task)", started("LocalActivity")),
    Variant("+ 1 signal and its workflow task", started("SignalledTasks", "1")),
    Variant("+ 2 signals and their workflow tasks", started("SignalledTasks", "2")),
    Variant("+ 3 local activities", started("LocalActivities")),
    Variant("+ 2 search attribute upserts", started("Upserts")),
    Variant("+ a timer started and cancelled", started("CancelledTimer")),
    Variant("+ an update at start (update-with-start)", submitted),
    # A message from outside once the workflow runs, as a job's end notification comes: would
    # an update (its workflow task speculative until accepted) cost less than a signal?
    Variant("+ 1 signal from a client and its workflow task", told_by_signal),
    Variant("+ 1 update from a client and its workflow task", told_by_update),
    # About a job's start input (its record, spec and policy), carried in and out again.
    Variant(
        "+ 2 KB of input, its local activity's result and its own",
        started("LocalActivity", "x" * 2048),
    ),
    Variant("the floor: one activity (2 workflow tasks)", started("FloorWorkflow")),
]


@dataclass
class Figures:
    rate: float
    server_ms: float
    worker_ms: float


async def round_of(
    client: Client, queue: str, variant: Variant, n: int, server: psutil.Process
) -> Figures:
    # This process is the worker and the client; the dev server is its child.
    meter = CpuMeter({"temporal": server, "benchmark": psutil.Process()})
    meter.start()
    began = time.perf_counter()
    await asyncio.gather(*(variant.run(client, queue, f"e-{uuid.uuid4().hex}") for _ in range(n)))
    rate = n / (time.perf_counter() - began)
    meter.stop()
    ms_each = {name: seconds / n * 1000 for name, seconds in meter.total.items()}
    return Figures(rate, ms_each["temporal"], ms_each["benchmark"])


async def measure(
    address: str, server: psutil.Process, n: int, rounds: int, variants: list[Variant]
) -> Table:
    client = await Client.connect(address)
    queue = f"elements-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[
            LocalActivity,
            SignalledTasks,
            Upserts,
            LocalActivities,
            CancelledTimer,
            Submitted,
            Told,
            FloorWorkflow,
        ],
        activities=[noop, signal_myself],
        workflow_runner=workflow_runner(),
        max_concurrent_workflow_tasks=200,
    )
    figures: dict[str, list[Figures]] = {v.name: [] for v in variants}
    async with worker:
        for v in variants:  # warm-up
            await asyncio.gather(
                *(v.run(client, queue, f"w-{i}-{uuid.uuid4().hex}") for i in range(10))
            )
        # Rounds interleave the variants, so a machine whose speed drifts moves them alike.
        for _ in range(rounds):
            for v in variants:
                figures[v.name].append(await round_of(client, queue, v, n, server))
    table = Table(title=f"{n} workflows at once, median of {rounds} rounds")
    table.add_column("workflow")
    table.add_column("workflows/s", justify="right")
    table.add_column("dev server CPU (ms each)", justify="right")
    table.add_column("worker and client CPU (ms each)", justify="right")
    for name, values in figures.items():
        table.add_row(
            name,
            f"{statistics.median(f.rate for f in values):.1f}",
            f"{statistics.median(f.server_ms for f in values):.1f}",
            f"{statistics.median(f.worker_ms for f in values):.1f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="the variants whose names contain this")
    args = parser.parse_args()
    # The floor always runs: every variant is read against it.
    variants = [v for v in VARIANTS if args.only in v.name or v.name.startswith("the floor")]
    root = Path(tempfile.mkdtemp(prefix="ruckus-elements-"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    supervisor = Supervisor(grace=5)
    child = temporal_child(root, port)
    try:
        supervisor.start(child, lambda: temporal_ready(address), 60, "")
        assert child.pid is not None
        server = psutil.Process(child.pid)
        table = asyncio.run(measure(address, server, args.workflows, args.rounds, variants))
    finally:
        supervisor.stop_all()
    Console().print(table)


if __name__ == "__main__":
    main()
