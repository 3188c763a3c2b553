"""Following a job: its log (`/logs`, with an offset) and a live stream of its status,
progress and log lines (`/events`, server-sent events) until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.agent_manager import AgentManager
from api.dependencies import AgentManagerDep, StorageDep
from api.errors import error_responses
from api.schemas import JobIdPath, JobStepsAnswer
from common.agent_client import AgentCallError
from common.models import JobInfo, JobLog
from common.storage import NotFoundError, StorageBackend

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

# A saved log is served in stretches of this many bytes; `next_offset` asks for the next one.
LOG_STRETCH_BYTES = 256 * 1024
# How often the event stream looks for news of the job.
EVENT_INTERVAL_S = 0.5

OffsetQuery = Annotated[
    int, Query(ge=0, le=2**40, description="Bytes of the log already read: `next_offset`")
]


@router.get("/{job_id}/logs", response_model=JobLog, responses=error_responses(404))
async def job_logs(
    job_id: JobIdPath, storage: StorageDep, agents: AgentManagerDep, offset: OffsetQuery = 0
) -> JobLog:
    """The job's log from `offset`: from its agent while it runs, as saved once it ended.

    `complete` says the job has ended and nothing will follow `next_offset`.
    """
    return await _log(await storage.get_job(job_id), storage, agents, offset)


@router.get("/{job_id}/steps", response_model=JobStepsAnswer, responses=error_responses(404))
async def job_steps(job_id: JobIdPath, storage: StorageDep) -> JobStepsAnswer:
    """The job's timeline: when it first took each of its statuses."""
    await storage.get_job(job_id)  # 404 for an unknown job
    return JobStepsAnswer(job_id=job_id, steps=await storage.get_job_steps(job_id))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Events until the job ends"},
        **error_responses(404),
    },
)
async def job_events(
    job_id: JobIdPath, request: Request, storage: StorageDep, agents: AgentManagerDep
) -> StreamingResponse:
    """Server-sent events until the job ends: `status` (the job, on every change of its status,
    stage or progress; a running job's stage and progress come live from its agent), `log`
    (new log text), then `end` (the job as it ended)."""
    job = await storage.get_job(job_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        shown, offset, current = None, 0, job
        while not await request.is_disconnected():
            current = await agents.with_live_progress(current)
            if current.status != shown:
                shown = current.status
                yield _event("status", current.model_dump_json())
            log = await _log(current, storage, agents, offset)
            if log.text:
                offset = log.next_offset
                yield _event("log", log.model_dump_json())
            if current.status.status.is_terminal and log.complete:
                yield _event("end", current.model_dump_json())
                return
            await asyncio.sleep(EVENT_INTERVAL_S)
            current = await storage.get_job(job_id)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


async def _log(job: JobInfo, storage: StorageBackend, agents: AgentManager, offset: int) -> JobLog:
    if job.status.status.is_terminal:
        try:
            saved = (await storage.get_job_log(job.job_id)).encode()
        except NotFoundError:
            saved = b""
        # Cut at a character boundary: the next stretch starts where this one's text ends.
        text = saved[offset : offset + LOG_STRETCH_BYTES].decode(errors="ignore")
        end = offset + len(text.encode())
        return JobLog(
            job_id=job.job_id, offset=offset, next_offset=end, text=text, complete=end >= len(saved)
        )
    unread = JobLog(job_id=job.job_id, offset=offset, next_offset=offset)
    try:
        agent = await storage.get_agent(job.agent_id)
        if not agent.keeps_logs:  # an existing agent: there is nothing to ask it for
            return unread
        return await agents.agents.get_job_logs(agent.agent_url, job.job_id, offset)
    except (NotFoundError, AgentCallError):
        # Not on the agent yet, or an agent that does not answer now.
        return unread
