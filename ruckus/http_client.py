"""A small client of the Ruckus server's HTTP API, for the CLI and the local stack.

Methods answer the API's JSON as it came (the CLI's `--json` prints exactly that); the few
that the CLI and `ruckus dev` read field by field also have typed forms.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from common.comparison import Comparison
from common.models import ExperimentSpec, JobInfo

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
# A submission is tried this often, with the same Idempotency-Key, when it may not have arrived
# (no answer, or 503): the server makes one job of all of them.
SUBMIT_TRIES = 4
SUBMIT_BACKOFF_S = 1.0


class RuckusAPIError(Exception):
    """The server answered an error, or could not be reached."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RuckusClient:
    def __init__(
        self, base_url: str = DEFAULT_SERVER_URL, api_key: str | None = None, timeout: float = 30
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RuckusClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Agents

    def register_agent(self, agent_url: str) -> dict[str, Any]:
        return self._call("POST", "/api/v1/agents/register", json={"agent_url": agent_url})

    def unregister_agent(self, agent_id: str) -> dict[str, Any]:
        return self._call("POST", "/api/v1/agents/unregister", json={"agent_id": agent_id})

    def list_agents(self) -> dict[str, Any]:
        """`{"agents": [...]}`."""
        return self._call("GET", "/api/v1/agents/")

    def agent_info(self, agent_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/agents/{agent_id}/info")["agent"])

    def agents_status(self) -> dict[str, Any]:
        """`{"agents": [...]}`."""
        return self._call("GET", "/api/v1/agents/status")

    def agent_status(self, agent_id: str) -> dict[str, Any]:
        """`{"agent": {...}}`."""
        return self._call("GET", f"/api/v1/agents/{agent_id}/status")

    # Experiments

    def create_experiment(self, spec: dict[str, Any] | ExperimentSpec) -> dict[str, Any]:
        body = spec.model_dump(mode="json") if isinstance(spec, ExperimentSpec) else spec
        return self._submit("/api/v1/experiments/", {"experiment_spec": body})

    def list_experiments(self) -> dict[str, Any]:
        """`{"experiments": [...]}`."""
        return self._call("GET", "/api/v1/experiments/")

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        """`{"experiment": {...}}`."""
        return self._call("GET", f"/api/v1/experiments/{experiment_id}")

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("DELETE", f"/api/v1/experiments/{experiment_id}")

    # Jobs and results

    def submit_job(
        self,
        experiment_id: str,
        agent_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Without `agent_id`, the server places the job (on an agent with these labels)."""
        body: dict[str, Any] = {"experiment_id": experiment_id}
        if agent_id is not None:
            body["agent_id"] = agent_id
        if labels:
            body["selector"] = {"labels": labels}
        return self._submit("/api/v1/jobs", body)

    def list_jobs(self, **filters: Any) -> dict[str, Any]:
        """`{"jobs": {agent_id: [job, ...]}}`, each list newest first."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._call("GET", "/api/v1/jobs", params=params)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}")

    def get_job(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(self.job(job_id))

    def cancel_job(self, job_id: str) -> None:
        self._call("DELETE", f"/api/v1/jobs/{job_id}")

    def job_logs(self, job_id: str, offset: int = 0) -> dict[str, Any]:
        """`{job_id, offset, next_offset, text, complete}`."""
        return self._call("GET", f"/api/v1/jobs/{job_id}/logs", params={"offset": offset})

    def job_events(self, job_id: str) -> Iterator[tuple[str, str]]:
        """The job's server-sent events, (event, data), until the server ends the stream."""
        try:
            with connect_sse(
                self._http, "GET", f"/api/v1/jobs/{job_id}/events", timeout=None
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise RuckusAPIError(_detail(source.response), source.response.status_code)
                for sse in source.iter_sse():
                    yield sse.event, sse.data
        except httpx.HTTPError as err:
            raise RuckusAPIError(f"the job's event stream broke: {err}") from err

    def result(self, job_id: str) -> dict[str, Any]:
        """`{"result": {...}}`."""
        return self._call("GET", f"/api/v1/results/{job_id}")

    def get_result(self, job_id: str) -> dict[str, Any]:
        return dict(self.result(job_id)["result"])

    def list_results(self, experiment_id: str | None = None) -> dict[str, Any]:
        """`{"results": [...]}`."""
        params = {"experiment_id": experiment_id} if experiment_id else {}
        return self._call("GET", "/api/v1/results", params=params)

    # Runs and comparisons

    def comparison(
        self, run_id: str | None, experiment_id: str | None, job_ids: list[str] | None
    ) -> Comparison:
        if run_id is not None:
            answer = self._call("GET", f"/api/v1/runs/{run_id}/comparison")
        elif experiment_id is not None:
            answer = self._call(
                "GET", "/api/v1/comparison", params={"experiment_id": experiment_id}
            )
        else:
            answer = self._call(
                "GET", "/api/v1/comparison", params={"job_ids": ",".join(job_ids or [])}
            )
        return Comparison.model_validate(answer)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/runs/{run_id}"))

    def start_run(
        self, experiment_id: str, agents: list[str], labels: dict[str, str], repeats: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"experiment_id": experiment_id, "repeats": repeats}
        if agents:
            body["agents"] = agents
        if labels:
            body["selector"] = {"labels": labels}
        return dict(self._call("POST", "/api/v1/runs", json=body))

    def list_runs(self, experiment_id: str | None = None) -> list[dict[str, Any]]:
        params = {"experiment_id": experiment_id} if experiment_id else {}
        return list(self._call("GET", "/api/v1/runs", params=params)["runs"])

    def cancel_run(self, run_id: str) -> None:
        self._call("DELETE", f"/api/v1/runs/{run_id}")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", ok_codes=(200, 503))

    def _submit(self, path: str, body: dict[str, Any]) -> Any:
        """POST a submission with an Idempotency-Key, retried with it while the answer is lost
        or the server is briefly unavailable."""
        headers = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}
        for attempt in range(1, SUBMIT_TRIES):
            try:
                return self._call("POST", path, json=body, headers=headers)
            except RuckusAPIError as err:
                if err.status_code not in (None, 502, 503, 504):
                    raise
            time.sleep(SUBMIT_BACKOFF_S * attempt)
        return self._call("POST", path, json=body, headers=headers)  # its error is the answer

    def _call(
        self, method: str, path: str, *, ok_codes: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            message = f"cannot reach the Ruckus server at {self._http.base_url}: {err}"
            raise RuckusAPIError(message) from err
        if response.status_code >= 400 and response.status_code not in ok_codes:
            raise RuckusAPIError(_detail(response), response.status_code)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text or response.reason_phrase
    if isinstance(detail, list):  # FastAPI validation errors: name each field
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
        )
    return f"HTTP {response.status_code}: {detail}"
