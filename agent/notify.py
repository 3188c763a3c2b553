"""Tells the server a job ended, when the job came with a callback URL (best effort), and only
the server the agent was configured for: callbacks elsewhere are ignored (see `CallbackOrigins`).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx

from common.models import ExecuteJobRequest, JobNotification, JobStatus
from common.settings import AgentSettings

logger = logging.getLogger(__name__)

TIMEOUT = 5.0


Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL; None when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


class CallbackOrigins:
    """Which callback URLs a job may use: those of the server the agent registers with
    (RUCKUS_AGENT_SERVER_URL) and of RUCKUS_AGENT_CALLBACK_ORIGINS. With neither set, any, but
    only on an agent that requires a token (then only its server can send jobs); else none."""

    def __init__(self, settings: AgentSettings) -> None:
        configured = [settings.server_url, *settings.callback_origins]
        self._origins = {o for url in configured if url and (o := origin(url))}
        self._any = not self._origins and settings.token is not None

    def allowed(self, job_id: str, urls: list[str]) -> list[str]:
        """The URLs a job's end may be posted to; what is left out is logged in one line."""
        if self._any:
            return list(urls)
        kept = [url for url in urls if origin(url) in self._origins]
        if len(kept) < len(urls):
            ignored = sorted({_shown(url) for url in urls if url not in kept})
            why = (
                "not the origin of the server this agent registers with "
                "(RUCKUS_AGENT_SERVER_URL) or of RUCKUS_AGENT_CALLBACK_ORIGINS"
                if self._origins
                else "this agent has no server URL, callback origins or token configured"
            )
            logger.warning(
                "job %s: callbacks to %s ignored (%s); the server sees the job's end when it "
                "next asks",
                job_id,
                ", ".join(ignored),
                why,
            )
        return kept


def _shown(url: str) -> str:
    # The origin only: a callback URL's query carries the job's token.
    found = origin(url)
    return f"{found[0]}://{found[1]}:{found[2]}" if found else "a URL that is not http(s)"


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


def callback_urls(request: ExecuteJobRequest) -> list[str]:
    """The job's callback URLs, one per API server, in the order to try them."""
    if request.callback_urls:
        return list(request.callback_urls)
    return [request.callback_url] if request.callback_url else []
