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

    def job_ended(self, urls: list[str], job_id: str, status: JobStatus) -> None:
        """Tell the first of `urls` (one per API server) that answers."""
        if not urls:
            return
        task = asyncio.get_running_loop().create_task(self._notify(urls, job_id, status))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _notify(self, urls: list[str], job_id: str, status: JobStatus) -> None:
        body = JobNotification(job_id=job_id, status=status).model_dump(mode="json")
        for url in urls:
            if await self._post(url, job_id, body):
                return

    async def _post(self, url: str, job_id: str, body: dict[str, object]) -> bool:
        """Whether the server answered (any answer but a 5xx: another server would not help)."""
        try:
            # Only the status matters: the answer's body is never read, and the whole call is
            # bounded, so a callback URL that answers forever costs nothing.
            async with asyncio.timeout(TIMEOUT):
                async with self._client.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        logger.info(
                            "job %s: callback answered HTTP %s", job_id, response.status_code
                        )
                    return response.status_code < 500
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.info("job %s: callback failed: %s", job_id, exc.__class__.__name__)
            return False

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=TIMEOUT)
        await self._client.aclose()
