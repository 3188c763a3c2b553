"""POST /api/v1/jobs/{job_id}/notify: an agent reports that a job ended, so it is polled at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from api.dependencies import CallbackSignerDep, JobManagerDep, require_temporal_not_known_down
from api.errors import error_responses
from api.schemas import JobIdPath
from common.models import JobNotification

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class NotifyResponse(BaseModel):
    job_id: str
    status: str = "accepted"


@router.post(
    "/{job_id}/notify",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotifyResponse,
    # Not probed per call: a probe would add a Temporal round trip to every job's end.
    dependencies=[Depends(require_temporal_not_known_down)],
    responses=error_responses(400, 403, 404),
)
async def notify_job(
    job_id: JobIdPath,
    signer: CallbackSignerDep,
    manager: JobManagerDep,
    notification: JobNotification | None = None,
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> NotifyResponse:
    """Called by agents when a job ends: its workflow ends the job now, not at the next tick.

    Authenticated by the signed token in the callback URL, not by the API key: 403 without the
    job's token, 202 with it, whether or not the job still runs. A body with the job's final
    status saves the workflow a status call, but the job ends only once the agent's own results
    confirm it; without one, or naming another job, the workflow asks the agent at once.
    """
    if not await signer.verify(job_id, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"invalid callback token for job {job_id}")
    # A body naming another job says nothing about this one: the workflow asks the agent.
    reported = None
    if notification is not None and notification.job_id == job_id:
        reported = notification.status
    await manager.notify_job(job_id, reported)
    return NotifyResponse(job_id=job_id)
