"""Tells the server a job ended, when the job came with a callback URL (best effort)."""

from __future__ import annotations

import asyncio
import logging

import httpx

from common.models import JobNotification, JobStatus

logger = logging.getLogger(__name__)

TIMEOUT = 5.0


class Notifier:
    """Posts notifications in the background; a lost one only delays the server's next poll."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(timeout=TIMEOUT)
        self._pending: set[asyncio.Task[None]] = set()

    def job_ended(self, url: str | None, job_id: str, status: JobStatus) -> None:
        if not url:
            return
        task = asyncio.get_running_loop().create_task(self._post(url, job_id, status))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, url: str, job_id: str, status: JobStatus) -> None:
        body = JobNotification(job_id=job_id, status=status).model_dump(mode="json")
        try:
            # Only the status matters: the answer's body is never read, and the whole call is
            # bounded, so a callback URL that answers forever costs nothing.
            async with asyncio.timeout(TIMEOUT):
                async with self._client.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        logger.info(
                            "job %s: callback answered HTTP %s", job_id, response.status_code
                        )
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.info("job %s: callback failed: %s", job_id, exc.__class__.__name__)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=TIMEOUT)
        await self._client.aclose()
