"""The engine's floor: a trivial workflow with one trivial activity, and its worker process.

`python -m bench.floor --address HOST:PORT --task-queue Q` runs the worker.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from common.event_loop import run
from workflows.worker import workflow_runner


@activity.defn
async def noop(value: str) -> str:
    return value


@workflow.defn
class FloorWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            noop, value, start_to_close_timeout=timedelta(seconds=30)
        )


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    # The same workflow runner as the Ruckus worker, so the ratio compares like with like.
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        workflow_runner=workflow_runner(),
    )
    print("floor worker ready", flush=True)
    await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
