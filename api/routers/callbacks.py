"""POST /api/v1/jobs/{job_id}/notify: an agent reports that a job ended, so it is polled at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel

from api.dependencies import JobManagerDep, require_temporal_not_known_down
from api.errors import error_responses
from api.schemas import JobIdPath
from common.callbacks import token_is_valid
from common.models import JobNotification
from common.settings import JobManagerSettings, reveal

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
    request: Request,
    manager: JobManagerDep,
    notification: JobNotification | None = None,
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> NotifyResponse:
    """Called by agents when a job ends: its workflow ends the job now, not at the next tick.

    Authenticated by the signed token in the callback URL, not by the API key. A body with the
    job's final status stands for the agent's answer to the next poll; without one, or with a
    status that is not final or a body naming another job, the workflow asks the agent at once.
    """
    settings: JobManagerSettings = request.app.state.job_settings
    secret = reveal(settings.callback_secret)
    # Tokens are hex; anything else is refused before the comparison, which takes ASCII only.
    if (token is not None and not token.isascii()) or not token_is_valid(secret, job_id, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"invalid callback token for job {job_id}")
    # A body naming another job says nothing about this one: the workflow asks the agent.
    reported = None
    if notification is not None and notification.job_id == job_id:
        reported = notification.status
    await manager.notify_job(job_id, reported)
    return NotifyResponse(job_id=job_id)
