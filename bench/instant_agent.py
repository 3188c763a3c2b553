"""Agents whose experiment finishes at once, many in one process, logging when jobs arrive.

`python -m bench.instant_agent --ports 9001 9002 ...` serves one agent per port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request


def build_app(agent_id: str) -> FastAPI:
    app = FastAPI()
    jobs: dict[str, dict[str, Any]] = {}
    state = {"busy": False, "hold": False}
    notify = httpx.AsyncClient(timeout=5)

    def now() -> str:
        return datetime.now(UTC).isoformat()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy", "version": "bench", "agent_id": agent_id}

    @app.get("/api/v1/info")
    async def info() -> dict[str, Any]:
        return {"agent_info": {"agent_id": agent_id, "agent_type": "white_box"}}

    @app.get("/api/v1/status")
    async def status() -> dict[str, Any]:
        return {"agent_id": agent_id, "status": "active" if state["busy"] else "idle"}

    @app.post("/api/v1/jobs")
    async def execute(request: Request) -> dict[str, str]:
        received = time.time()
        body = await request.json()
        job_id = body["job_id"]
        if job_id not in jobs:
            held = state["hold"]
            jobs[job_id] = {
                "received": received,
                "finished": None if held else time.time(),
                "experiment_id": body["experiment_spec"]["id"],
            }
            callback = body.get("callback_url")
            if callback and not held:
                asyncio.get_running_loop().create_task(_notify(callback, job_id))
        return {"job_id": job_id, "status": "accepted"}

    async def _notify(url: str, job_id: str) -> None:
        # A lost notification is fine: the timer-driven poll is the fallback.
        with contextlib.suppress(httpx.HTTPError):
            status = {"status": "completed", "timestamp": now(), "message": "done"}
            await notify.post(url, json={"job_id": job_id, "status": status})

    @app.get("/api/v1/status/{job_id}")
    async def job_status(job_id: str) -> dict[str, Any]:
        if job_id not in jobs:
            raise HTTPException(404, "unknown job")
        if jobs[job_id]["finished"] is None:
            return {"status": "running", "timestamp": now(), "message": "held"}
        return {"status": "completed", "timestamp": now(), "message": "done"}

    @app.get("/api/v1/results/{job_id}")
    async def results(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "unknown job")
        return {
            "job_id": job_id,
            "experiment_id": job["experiment_id"],
            "status": "completed",
            "metrics": {"value": 1.0},
        }

    @app.delete("/api/v1/jobs/{job_id}")
    async def cancel(job_id: str) -> dict[str, str]:
        return {"job_id": job_id, "status": "cancelled"}

    @app.post("/bench/mode")
    async def set_mode(busy: bool = False, hold: bool = False) -> dict[str, bool]:
        """busy: report `active` (work from elsewhere); hold: jobs received keep running."""
        state.update(busy=busy, hold=hold)
        return state

    @app.get("/bench/log")
    async def log() -> dict[str, dict[str, Any]]:
        return jobs

    return app


async def serve(ports: list[int]) -> None:
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                build_app(f"bench-agent-{port}"),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
            )
        )
        for port in ports
    ]
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    asyncio.run(serve(parser.parse_args().ports))


if __name__ == "__main__":
    main()
