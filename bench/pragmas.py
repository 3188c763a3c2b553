"""The dev server's SQLite pragmas: one-activity workflows per second with each setting.

`python -m bench.pragmas` (or `make bench-pragmas`) prints a table; the README quotes it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, noop
from bench.stack import free_port
from ruckus.supervisor import Child, Supervisor, temporal_ready
from ruckus.temporal_server import dev_server_command

SETTINGS: dict[str, tuple[str, ...]] = {
    "default (rollback journal, synchronous=FULL)": (),
    "journal_mode=WAL, synchronous=FULL": ("journal_mode=WAL", "synchronous=FULL"),
    "journal_mode=WAL, synchronous=NORMAL (Ruckus)": ("journal_mode=WAL", "synchronous=NORMAL"),
}
WORKFLOWS = 200
ROUNDS = 3


async def rate(address: str) -> float:
    client = await Client.connect(address)
    queue = f"pragmas-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[noop]):

        async def one(i: int) -> None:
            await client.execute_workflow(
                FloorWorkflow.run, str(i), id=f"p-{uuid.uuid4().hex}", task_queue=queue
            )

        for i in range(10):
            await one(i)
        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(WORKFLOWS)))
        return WORKFLOWS / (time.perf_counter() - began)


def measure(pragmas: tuple[str, ...], root: Path) -> float:
    port = free_port()
    supervisor = Supervisor(grace=5)
    cmd = dev_server_command(db_file=root / f"{port}.db", port=port, pragmas=pragmas)
    try:
        address = f"127.0.0.1:{port}"
        supervisor.start(
            Child("temporal", cmd, root / f"{port}.log"), lambda: temporal_ready(address), 60, ""
        )
        return asyncio.run(rate(address))
    finally:
        supervisor.stop_all()


def main() -> None:
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="ruckus-pragmas-"))
    # Rounds alternate the settings so a burst of load elsewhere hits them all alike.
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(ROUNDS):
        for name, pragmas in SETTINGS.items():
            rates[name].append(measure(pragmas, root))
    table = Table(title=f"{WORKFLOWS} one-activity workflows at once, dev server on a file")
    table.add_column("SQLite pragmas")
    table.add_column("workflows/s (median)", justify="right")
    table.add_column("each round", justify="right")
    for name, values in rates.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        table.add_row(name, f"{statistics.median(values):.1f}", rounds)
    console.print(table)


if __name__ == "__main__":
    main()
