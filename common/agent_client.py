"""AgentUtility: the server's HTTP client for the agent protocol."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from common.models import (
    AgentInfoResponse,
    AgentStatus,
    ExecuteJobRequest,
    ExperimentSpec,
    JobStatus,
)

_M = TypeVar("_M", bound=BaseModel)


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
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.AsyncClient(timeout=timeout, headers=headers)

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
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        body = ExecuteJobRequest(experiment_spec=spec, job_id=job_id).model_dump(mode="json")
        if callback_url:
            body["callback_url"] = callback_url
        data = await self._request("execute_experiment", "POST", agent_url, "/api/v1/jobs", body)
        return data if isinstance(data, dict) else {"response": data}

    async def get_job_status(self, agent_url: str, job_id: str) -> JobStatus:
        data = await self._request("get_job_status", "GET", agent_url, f"/api/v1/status/{job_id}")
        return self._parse("get_job_status", JobStatus, data)

    async def get_experiment_results(self, agent_url: str, job_id: str) -> dict[str, Any]:
        call = "get_experiment_results"
        data = await self._request(call, "GET", agent_url, f"/api/v1/results/{job_id}")
        if not isinstance(data, dict):
            raise AgentCallError(call, "the agent answered a non-object result", retryable=False)
        return data

    async def cancel_job(self, agent_url: str, job_id: str) -> None:
        await self._request("cancel_job", "DELETE", agent_url, f"/api/v1/jobs/{job_id}")

    async def _request(
        self, call: str, method: str, agent_url: str, path: str, body: Any = None
    ) -> Any:
        url = agent_url.rstrip("/") + path
        try:
            response = await self._client.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise AgentCallError(call, f"timed out calling {url}", retryable=True) from exc
        except httpx.HTTPError as exc:
            cause = f"cannot reach {url}: {exc.__class__.__name__}: {exc}".rstrip(": ")
            raise AgentCallError(call, cause, retryable=True) from exc
        if response.status_code >= 400:
            detail = _detail(response)
            raise AgentCallError(
                call,
                f"the agent answered HTTP {response.status_code}: {detail}",
                retryable=response.status_code >= 500 or response.status_code == 429,
                status_code=response.status_code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise AgentCallError(call, "the agent answered invalid JSON", retryable=False) from exc

    @staticmethod
    def _parse(call: str, model: type[_M], data: Any) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            cause = f"the agent answered an invalid {model.__name__}: {exc.errors()[0]['msg']}"
            raise AgentCallError(call, cause, retryable=False) from exc


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:200]
    return str(data)[:200]
