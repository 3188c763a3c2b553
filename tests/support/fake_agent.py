"""A controllable agent for tests: speaks the agent protocol and misbehaves on request.

Run as `python -m tests.support.fake_agent --port P`. Tests steer it through /control.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from common.models import JOB_LOGS_CAPABILITY

Mode = Literal["ok", "error500", "hang", "garbage", "reject400", "endless", "wrong_types"]


class Behaviour(BaseModel):
    agent_status: Literal["idle", "active", "error", "auto"] = "auto"
    status_mode: Mode = "ok"
    execute_mode: Mode = "ok"
    job_status_mode: Mode = "ok"
    results_mode: Mode = "ok"
    # Seconds a job runs before completing by itself; None = until /control/finish.
    job_duration: float | None = 0.0
    final_status: str = "completed"
    # While set, a running job is reported with this status (e.g. "queued").
    job_report: str | None = None
    # Drop completion callbacks, as a lossy network would.
    lose_callbacks: bool = False
    # Accept this many new jobs but answer 500, as if the answer were lost on its way back.
    lose_execute_answers: int = 0
    # While set, a running job reports this stage and fraction done.
    stage: str | None = None
    progress: float | None = None
    # As an existing Ruckus agent: start and end times in job status, its own experiment id
    # and extra fields in results, and a cancel that answers 500.
    existing_style: bool = False


class Job(BaseModel):
    job_id: str
    experiment_id: str
    status: str = "running"
    message: str = "running"
    started_at: datetime
    finishes_at: datetime | None = None
    callback_url: str | None = None
    error_type: str | None = None
    log: str = ""


def now() -> datetime:
    return datetime.now(UTC)


# Endless answers being sent now: one stays open until its reader goes away.
open_streams = 0


async def endless_json() -> AsyncIterator[bytes]:
    """A JSON answer that never ends: an array growing forever."""
    global open_streams
    open_streams += 1
    try:
        yield b'{"padding": ['
        chunk = b'"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ' * 2000
        while True:
            yield chunk
            await asyncio.sleep(0)
    finally:
        open_streams -= 1


def build_app(agent_id: str) -> FastAPI:
    app = FastAPI()
    behaviour = Behaviour()
    jobs: dict[str, Job] = {}
    log: list[dict[str, Any]] = []

    def advance() -> None:
        for job in jobs.values():
            if job.status == "running" and job.finishes_at and now() >= job.finishes_at:
                job.status = behaviour.final_status
                job.message = f"job {job.status}"

    def running() -> list[Job]:
        advance()
        return [j for j in jobs.values() if j.status == "running"]

    async def misbehave(mode: Mode) -> Response | None:
        if mode == "error500":
            return JSONResponse({"detail": "injected failure"}, status_code=500)
        if mode == "reject400":
            return JSONResponse({"detail": "injected rejection"}, status_code=400)
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "garbage":
            return Response(b"{not json", media_type="application/json")
        if mode == "endless":
            return StreamingResponse(endless_json(), media_type="application/json")
        if mode == "wrong_types":
            # Valid JSON where every field has the wrong type, and a list where an object goes.
            return JSONResponse([{"agent_id": 7, "status": ["idle"], "job_id": None}])
        return None

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy", "version": "test", "agent_id": agent_id}

    @app.get("/api/v1/info")
    async def info() -> dict[str, Any]:
        # It serves its jobs' logs below, as Ruckus agents do; existing agents keep none.
        keeps_logs = not behaviour.existing_style
        return {
            "agent_info": {
                "agent_id": agent_id,
                "agent_name": "fake",
                "agent_type": "white_box",
                "capabilities": {JOB_LOGS_CAPABILITY: True} if keeps_logs else {},
            }
        }

    @app.get("/api/v1/status")
    async def status(request: Request) -> Any:
        if behaviour.status_mode == "hang":
            # Never answered; the log says when it was asked and when its caller gave up.
            log.append({"call": "status_asked", "at": now().isoformat()})
            while (await request.receive())["type"] != "http.disconnect":
                pass
            log.append({"call": "status_abandoned", "at": now().isoformat()})
            return Response(status_code=499)
        bad = await misbehave(behaviour.status_mode)
        if bad is not None:
            return bad
        current = running()
        state = behaviour.agent_status
        if state == "auto":
            state = "active" if current else "idle"
        log.append({"call": "status", "answer": state, "at": now().isoformat()})
        return {
            "agent_id": agent_id,
            "status": state,
            "running_jobs": [j.job_id for j in current],
            "uptime_seconds": 1.0,
            "timestamp": now().isoformat(),
        }

    @app.post("/api/v1/jobs")
    async def execute(request: Request) -> Any:
        body = await request.json()
        job_id = body["job_id"]
        log.append(
            {
                "call": "execute",
                "job_id": job_id,
                "at": now().isoformat(),
                "concurrent": [j.job_id for j in running()],
            }
        )
        bad = await misbehave(behaviour.execute_mode)
        if bad is not None:
            return bad
        known = jobs.get(job_id)
        if known is not None and known.error_type != "AgentRestarted":
            return {"job_id": job_id, "status": "accepted"}
        if running():
            raise HTTPException(409, "busy with another job")
        started = now()
        finishes = None
        if behaviour.job_duration is not None:
            finishes = datetime.fromtimestamp(started.timestamp() + behaviour.job_duration, UTC)
        jobs[job_id] = Job(
            job_id=job_id,
            experiment_id=body["experiment_spec"]["id"],
            started_at=started,
            finishes_at=finishes,
            callback_url=body.get("callback_url"),
            log=f"starting {job_id}\n",
        )
        if behaviour.lose_execute_answers > 0:
            behaviour.lose_execute_answers -= 1
            return JSONResponse({"detail": "answer lost"}, status_code=500)
        return {"job_id": job_id, "status": "accepted"}

    @app.get("/api/v1/status/{job_id}")
    async def job_status(job_id: str) -> Any:
        bad = await misbehave(behaviour.job_status_mode)
        if bad is not None:
            return bad
        advance()
        job = jobs.get(job_id)
        log.append({"call": "job_status", "job_id": job_id, "at": now().isoformat()})
        if job is None:
            raise HTTPException(404, "unknown job")
        status = job.status
        if status == "running" and behaviour.job_report:
            status = behaviour.job_report
        # Existing agents send no timestamp: the server must cope.
        answer: dict[str, Any] = {"job_id": job_id, "status": status, "message": job.message}
        if behaviour.existing_style:
            answer["started_at"] = job.started_at.isoformat()
            if job.status != "running":
                answer["completed_at"] = (job.finishes_at or job.started_at).isoformat()
        if job.status == "running" and behaviour.stage is not None:
            answer |= {"stage": behaviour.stage, "progress": behaviour.progress}
        if job.error_type:
            answer["error_type"] = job.error_type
        return answer

    @app.get("/api/v1/jobs/{job_id}/logs")
    async def logs(job_id: str, offset: int = 0) -> Any:
        advance()
        log.append({"call": "logs", "job_id": job_id, "at": now().isoformat()})
        job = jobs.get(job_id)
        if job is None or behaviour.existing_style:  # existing agents have no such route
            raise HTTPException(404, "unknown job")
        data = job.log.encode()
        text = data[offset:].decode()
        return {
            "job_id": job_id,
            "offset": offset,
            "next_offset": len(data),
            "text": text,
            "complete": job.status != "running",
        }

    @app.get("/api/v1/results/{job_id}")
    async def results(job_id: str) -> Any:
        bad = await misbehave(behaviour.results_mode)
        if bad is not None:
            return bad
        advance()
        log.append({"call": "results", "job_id": job_id, "at": now().isoformat()})
        job = jobs.get(job_id)
        if job is None or job.status == "running":
            raise HTTPException(404, "no results")
        answer = {
            "job_id": job_id,
            "experiment_id": job.experiment_id,
            "status": job.status,
            "started_at": job.started_at.isoformat(),
            "completed_at": now().isoformat(),
            "metrics": {"answer": 42},
            "output": {"agent": agent_id},
        }
        if behaviour.existing_style:
            ended = job.finishes_at or job.started_at
            answer |= {
                "experiment_id": f"derived-{job.experiment_id}",
                "completed_at": ended.isoformat(),
                "agent_version": "0.9.0",
                "error_type": None,
            }
        return answer

    @app.delete("/api/v1/jobs/{job_id}")
    async def cancel(job_id: str) -> Any:
        log.append({"call": "cancel", "job_id": job_id, "at": now().isoformat()})
        if behaviour.existing_style:
            return JSONResponse({"detail": "cancel failed"}, status_code=500)
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "unknown job")
        if job.status == "running":
            job.status, job.message = "cancelled", "cancelled on request"
        return {"job_id": job_id, "status": job.status}

    # Test controls

    @app.post("/control")
    async def control(update: dict[str, Any]) -> Behaviour:
        nonlocal behaviour
        behaviour = behaviour.model_copy(
            update=Behaviour.model_validate(behaviour.model_dump() | update).model_dump()
        )
        return behaviour

    @app.post("/control/finish/{job_id}")
    async def finish(job_id: str, status: str = "completed") -> dict[str, str]:
        job = jobs[job_id]
        job.status, job.message = status, f"job {status}"
        log.append({"call": "finish", "job_id": job_id, "at": now().isoformat()})
        if job.callback_url and not behaviour.lose_callbacks:
            note = {"job_id": job_id, "status": {"status": status, "message": job.message}}
            # Best effort, as a real agent's: a slow or failed notification is the poll's job.
            try:
                async with httpx.AsyncClient(timeout=15) as http:
                    answer = await http.post(job.callback_url, json=note)
                code: int | str = answer.status_code
            except httpx.HTTPError as err:
                code = repr(err)
            log.append({"call": "callback", "job_id": job_id, "answer": code})
        return {"job_id": job_id, "status": status}

    @app.post("/control/log/{job_id}")
    async def add_log(job_id: str, line: str) -> dict[str, str]:
        jobs[job_id].log += line + "\n"
        return {"job_id": job_id}

    @app.post("/control/restart")
    async def restart(forget: bool = False) -> dict[str, int]:
        """As an agent that restarted: running jobs are lost (forgotten, or marked so)."""
        lost = [j for j in jobs.values() if j.status == "running"]
        for job in lost:
            if forget:
                del jobs[job.job_id]
            else:
                job.status, job.error_type = "failed", "AgentRestarted"
                job.message = "the agent shut down while the job ran"
        log.append({"call": "restart", "at": now().isoformat()})
        return {"lost": len(lost)}

    @app.get("/control/streams")
    async def get_streams() -> dict[str, int]:
        return {"open": open_streams}

    @app.get("/control/log")
    async def get_log() -> list[dict[str, Any]]:
        return log

    @app.get("/control/jobs")
    async def get_jobs() -> dict[str, Job]:
        advance()
        return jobs

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--agent-id", default="fake-agent")
    args = parser.parse_args()
    # A request left hanging (hang mode) must not hold the test's teardown for long.
    uvicorn.run(
        build_app(args.agent_id),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
