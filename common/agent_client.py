"""AgentUtility: the server's HTTP client for the agent protocol."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from common.models import (
    TERMINAL_JOB_STATUSES,
    AgentInfoResponse,
    AgentStatus,
    ExecuteJobRequest,
    ExperimentSpec,
    JobLog,
    JobStatus,
)
from common.settings import JobManagerSettings, reveal

_M = TypeVar("_M", bound=BaseModel)

# An agent answers a status in a few hundred bytes and results in kilobytes to megabytes;
# anything past these is a broken or hostile agent, and is not read further.
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RESULTS_BYTES = 50 * 1024 * 1024
RESULTS_MIN_SECONDS = 60.0


class AgentCallError(Exception):
    """An agent call failed; `retryable` says whether trying again may help."""

    def __init__(self, call: str, cause: str, *, retryable: bool, status_code: int | None = None):
        super().__init__(f"{call} failed: {cause}")
        self.call = call
        self.cause = cause
        self.retryable = retryable
        self.status_code = status_code


class AgentUtility:
    """Calls one agent endpoint per method; errors become AgentCallError."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_results_bytes: int = MAX_RESULTS_BYTES,
    ) -> None:
        headers = {"Accept-Encoding": "identity"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.AsyncClient(timeout=timeout, headers=headers)
        # httpx's timeout bounds each read; this bounds the whole call, so a body that trickles
        # forever cannot hold a call (and its activity slot) open.
        self._deadline = timeout
        self._max_response = max_response_bytes
        self._max_results = max_results_bytes

    @classmethod
    def from_settings(cls, settings: JobManagerSettings) -> AgentUtility:
        """The client every server process uses: timeouts, token and limits from settings."""
        return cls(
            timeout=settings.agent_call_timeout,
            token=reveal(settings.agent_token),
            max_response_bytes=settings.agent_max_response_bytes,
            max_results_bytes=settings.agent_max_results_bytes,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_agent_info(self, agent_url: str) -> AgentInfoResponse:
        data = await self._request("get_agent_info", "GET", agent_url, "/api/v1/info")
        return self._parse("get_agent_info", AgentInfoResponse, data)

    async def get_agent_status(self, agent_url: str) -> AgentStatus:
        data = await self._request("get_agent_status", "GET", agent_url, "/api/v1/status")
        return self._parse("get_agent_status", AgentStatus, data)

    async def execute_experiment(
        self,
        agent_url: str,
        spec: ExperimentSpec,
        job_id: str,
        callback_urls: list[str] | None = None,
    ) -> dict[str, Any]:
        """Send the job; `callback_urls` are the API servers to tell when it ends, in order."""
        body = ExecuteJobRequest(experiment_spec=spec, job_id=job_id).model_dump(mode="json")
        if callback_urls:
            # `callback_url` for every agent that knows callbacks; the others for ours.
            body["callback_url"] = callback_urls[0]
            if len(callback_urls) > 1:
                body["callback_urls"] = callback_urls
        data = await self._request("execute_experiment", "POST", agent_url, "/api/v1/jobs", body)
        return data if isinstance(data, dict) else {"response": data}

    async def get_job_status(self, agent_url: str, job_id: str) -> JobStatus:
        data = await self._request("get_job_status", "GET", agent_url, f"/api/v1/status/{job_id}")
        if isinstance(data, dict) and data.get("timestamp") is None:
            # Existing agents send the time of the job's start or end instead of the answer's.
            ended = data.get("status") in {s.value for s in TERMINAL_JOB_STATUSES}
            data = {**data, "timestamp": data.get("completed_at" if ended else "started_at")}
            if data["timestamp"] is None:
                del data["timestamp"]  # no time at all: the time of this poll stands
        return self._parse("get_job_status", JobStatus, data)

    async def get_job_logs(self, agent_url: str, job_id: str, offset: int = 0) -> JobLog:
        path = f"/api/v1/jobs/{job_id}/logs?offset={offset}"
        data = await self._request("get_job_logs", "GET", agent_url, path)
        return self._parse("get_job_logs", JobLog, data)

    async def get_experiment_results(self, agent_url: str, job_id: str) -> dict[str, Any]:
        call = "get_experiment_results"
        path = f"/api/v1/results/{job_id}"
        data = await self._request(call, "GET", agent_url, path, limit=self._max_results)
        if not isinstance(data, dict):
            raise AgentCallError(call, "the agent answered a non-object result", retryable=False)
        return data

    async def cancel_job(self, agent_url: str, job_id: str) -> None:
        await self._request("cancel_job", "DELETE", agent_url, f"/api/v1/jobs/{job_id}")

    async def _request(
        self,
        call: str,
        method: str,
        agent_url: str,
        path: str,
        body: Any = None,
        limit: int | None = None,
    ) -> Any:
        url = agent_url.rstrip("/") + path
        deadline = self._deadline
        if limit is not None:
            # Results may be tens of megabytes: they get at least a minute.
            deadline = max(deadline, RESULTS_MIN_SECONDS)
        limit = limit or self._max_response
        try:
            async with asyncio.timeout(deadline):
                status_code, content = await self._read(method, url, body, limit)
        except TimeoutError as exc:
            raise AgentCallError(call, f"timed out calling {url}", retryable=True) from exc
        except httpx.TimeoutException as exc:
            raise AgentCallError(call, f"timed out calling {url}", retryable=True) from exc
        except _TooLarge as exc:
            cause = f"the agent's answer from {url} is larger than {limit} bytes; not read further"
            raise AgentCallError(call, cause, retryable=False) from exc
        except httpx.HTTPError as exc:
            cause = f"cannot reach {url}: {exc.__class__.__name__}: {exc}".rstrip(": ")
            raise AgentCallError(call, cause, retryable=True) from exc
        if status_code >= 400:
            raise AgentCallError(
                call,
                f"the agent answered HTTP {status_code}: {_detail(content)}",
                retryable=status_code >= 500 or status_code == 429,
                status_code=status_code,
            )
        if not content:
            return None
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise AgentCallError(call, "the agent answered invalid JSON", retryable=False) from exc

    async def _read(self, method: str, url: str, body: Any, limit: int) -> tuple[int, bytes]:
        """The status and body of one call, reading no more than `limit` bytes of the body."""
        async with self._client.stream(method, url, json=body) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _TooLarge
            chunks = bytearray()
            # Decoded bytes are counted, so a compressed answer cannot expand past the limit.
            async for chunk in response.aiter_bytes():
                chunks += chunk
                if len(chunks) > limit:
                    raise _TooLarge
            return response.status_code, bytes(chunks)

    @staticmethod
    def _parse(call: str, model: type[_M], data: Any) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            cause = f"the agent answered an invalid {model.__name__}: {exc.errors()[0]['msg']}"
            raise AgentCallError(call, cause, retryable=False) from exc


class _TooLarge(Exception):
    """The agent's answer passed the size limit."""


def _detail(content: bytes) -> str:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return content[:200].decode(errors="replace") or "no detail"
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:200]
    return str(data)[:200]
