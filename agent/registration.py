"""The agent joins its server by itself: it registers its own URL and labels at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator

import httpx

from common.settings import AgentSettings

log = logging.getLogger(__name__)

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 30.0
CALL_TIMEOUT_SECONDS = 30.0


class RegistrationRefused(Exception):
    """The server answered the registration with an error that trying again will not fix."""


def advertise_url(settings: AgentSettings) -> str:
    """The URL the server is told to reach this agent at."""
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    host = socket.getfqdn() if settings.host in WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.port}"


def local_url(settings: AgentSettings) -> str:
    """This agent as a process on the same machine reaches it."""
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.port}"


@contextlib.asynccontextmanager
async def joined(settings: AgentSettings, agent_id: str) -> AsyncIterator[None]:
    """Register with `settings.server_url` in the background while the agent runs."""
    if not settings.server_url:
        yield
        return
    task = asyncio.create_task(register_until_answered(settings, agent_id))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def register_until_answered(settings: AgentSettings, agent_id: str) -> bool:
    """Register once this agent serves; retry with backoff while the server cannot answer.

    True once registered; False when the server refused (logged with its reason).
    """
    assert settings.server_url
    server = settings.server_url.rstrip("/")
    url = advertise_url(settings)
    key = settings.api_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT_SECONDS) as http:
        # The server reads this agent's /api/v1/info to register it: wait until it serves.
        await _wait_serving(http, local_url(settings))
        delay = FIRST_RETRY_SECONDS
        last_error = ""
        while True:
            try:
                await _register(http, server, url, headers)
            except RegistrationRefused as refused:
                log.error(
                    "registration with %s refused: %s; fix it and restart the agent",
                    server,
                    refused,
                )
                return False
            except _Retry as retry:
                if str(retry) != last_error:  # one line per new reason, not one per try
                    log.warning(
                        "cannot register with %s yet (%s); retrying until it answers",
                        server,
                        retry,
                    )
                    last_error = str(retry)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, LONGEST_RETRY_SECONDS)
                continue
            labels = ", ".join(f"{k}={v}" for k, v in sorted(settings.labels.items()))
            log.info(
                "registered with %s as agent %s at %s%s",
                server,
                agent_id,
                url,
                f" (labels {labels})" if labels else "",
            )
            return True


class _Retry(Exception):
    """The server could not answer now; trying again may work."""


async def _register(
    http: httpx.AsyncClient, server: str, url: str, headers: dict[str, str]
) -> None:
    try:
        answer = await http.post(
            server + "/api/v1/agents/register", json={"agent_url": url}, headers=headers
        )
    except httpx.HTTPError as err:
        raise _Retry(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from err
    if answer.status_code == 200:
        return
    reason = f"HTTP {answer.status_code}: {_detail(answer)}"
    # 5xx: the server or what it depends on (Temporal, storage, reaching this agent) is not
    # ready yet; 408 and 429 ask for another try too. Any other answer is final.
    if answer.status_code >= 500 or answer.status_code in (408, 429):
        raise _Retry(reason)
    raise RegistrationRefused(reason)


async def _wait_serving(http: httpx.AsyncClient, url: str) -> None:
    delay = 0.05
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(url + "/health", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail", answer.text)
    except (ValueError, AttributeError):
        detail = answer.text
    return str(detail)[:300] or answer.reason_phrase
