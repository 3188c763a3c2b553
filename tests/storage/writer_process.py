"""A separate writer process for the storage tests: appends to one queue, races for the agent.

Run as `python -m tests.storage.writer_process URL NAME COUNT`: it prints `ready`, starts writing
when a line arrives on stdin, and prints a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import sys

from common.models import JobStatusEnum
from common.storage import ConflictError
from tests.storage.helpers import make_job, open_backend


async def main(url: str, name: str, count: int) -> dict[str, object]:
    storage = open_backend(url)
    await storage.initialize()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    got_running_slot = False
    for n in range(count):
        await storage.create_job(make_job(f"job_{name}_{n:02d}"))
        if n == count // 2:
            try:
                await storage.create_job(make_job(f"job_{name}_run", JobStatusEnum.RUNNING))
                got_running_slot = True
            except ConflictError:
                pass
    await storage.close()
    return {"name": name, "got_running_slot": got_running_slot}


if __name__ == "__main__":
    report = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    print(json.dumps(report), flush=True)
