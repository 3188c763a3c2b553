"""Configuration of every Ruckus process, read from `RUCKUS_*` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".ruckus")


def _empty_is_unset(value: Any) -> Any:
    return value or None


# An empty variable (`RUCKUS_API_KEY=` in a compose file) means "no secret", not "the empty one".
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]


def _origins(value: Any) -> Any:
    """A JSON list, or the plain forms people type: `*`, `https://a,https://b`."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [origin.strip() for origin in text.split(",") if origin.strip()]
    return value


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset: the one place secrets are unwrapped."""
    return secret.get_secret_value() if secret is not None else None


class AgentSettings(BaseSettings):
    """The agent service (`RUCKUS_AGENT_*`)."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_AGENT_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the agent listens on")
    port: int = Field(default=8081, ge=0, le=65535, description="Port the agent listens on")
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR / "agent",
        description="Job records, results and the agent id; `.ruckus/agent-PORT` by default "
        "on a port other than 8081",
    )
    agent_id: str | None = Field(
        default=None, description="Stable id; generated and persisted on first start when unset"
    )
    agent_name: str | None = Field(default=None, description="A readable name for people")
    default_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="Deadline of a job whose spec names none"
    )
    token: OptionalSecret = Field(
        default=None, description="When set, every endpoint but /health requires this bearer token"
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger: 413"
    )
    server_url: str | None = Field(
        default=None,
        description="The Ruckus API the agent registers itself with at start "
        "(`RUCKUS_SERVER_URL` when unset)",
    )
    advertise_url: str | None = Field(
        default=None,
        description="The agent's URL as the server reaches it; `http://HOST:PORT` when unset "
        "(the machine's name when HOST is 0.0.0.0)",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description='Labels the agent reports for placement, a JSON object: `{"gpu": "a100"}`',
    )
    api_key: OptionalSecret = Field(
        default=None,
        description="The server's API key, sent when registering (`RUCKUS_API_KEY` when unset)",
    )
    available_results: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="Finished jobs listed in /api/v1/status `available_results`, newest first",
    )
    retention_max_records: int = Field(
        default=10_000,
        ge=1,
        description="Finished jobs kept on disk; the oldest beyond this are deleted",
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Days a finished job's status and results are kept after it ended",
    )
    retention_check_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between two sweeps that delete records past their retention",
    )
    job_log_max_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        description="Largest log kept per job (its task's lines, stdout and stderr); past it "
        "the first and last halves are kept with a marker between them",
    )
    callback_origins: list[str] = Field(
        default_factory=list,
        description="Origins (`scheme://host:port`) besides SERVER_URL's that a job's callback "
        'URL may name, a JSON list: `["https://ruckus-api-2:8000"]`; with neither, callbacks '
        "are used only when TOKEN is set",
    )

    @field_validator("callback_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) origin such as https://host:8000")
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
        return value


class StorageSettings(BaseSettings):
    """The server's durable record (`RUCKUS_STORAGE_*`)."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_STORAGE_", extra="ignore")

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Holds the SQLite database by default"
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; a SQLite file under data_dir when unset",
    )
    pool_size: int = Field(default=10, ge=1, description="Connections per process (PostgreSQL)")
    echo: bool = Field(default=False, description="Log every SQL statement")

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ruckus.db').resolve()}"


class JobPolicy(BaseModel):
    """The settings a job's workflow runs by: fixed in its input when the job is created."""

    job_status_polling_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two status polls of a running job"
    )
    job_status_safety_polling_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two polls of a running job whose agent has shown it reports "
        "a job's end: the poll is then only a safety net (back to the interval above once a "
        "poll finds an end no notification announced); both get +/-10% jitter",
    )
    agent_call_timeout: float = Field(default=10.0, gt=0, description="Seconds per agent call")
    agent_retry_initial_interval: float = Field(
        default=1.0, gt=0, description="Seconds before the first retry of a failed agent call"
    )
    agent_retry_maximum_interval: float = Field(
        default=10.0, gt=0, description="Longest pause between retries of an agent call"
    )
    agent_retry_maximum_attempts: int = Field(
        default=5, ge=1, description="Tries of an agent call before the job fails"
    )
    default_job_timeout: float = Field(
        default=3600.0, gt=0, description="Seconds a job may run when its spec sets no timeout"
    )
    busy_agent_recheck_initial: float = Field(
        default=2.0, gt=0, description="First wait before re-asking an agent busy elsewhere"
    )
    busy_agent_recheck_maximum: float = Field(
        default=60.0, gt=0, description="Longest wait between those re-checks"
    )
    job_continue_as_new_polls: int = Field(
        default=500, ge=2, description="Polls before a job workflow continues as new"
    )
    queue_continue_as_new_events: int = Field(
        default=2000, ge=10, description="History events before a queue continues as new"
    )
    job_agent_lost_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Times a job is sent again when its agent comes back without it (it "
        "restarted); 0 fails such a job",
    )
    queue_holder_check_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between a queue's checks that the job holding its agent is still "
        "open (a terminated job's workflow never frees it) while other jobs wait for the agent; "
        "ten times as long while none does",
    )


class JobManagerSettings(JobPolicy, BaseSettings):
    """Job orchestration (`RUCKUS_*`); the Temporal connection itself follows `TEMPORAL_*`."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_", extra="ignore")

    submission_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a job submission waits for its workflow to confirm the job is "
        "queued; past that the job is recorded FAILED and never runs, and the answer is 503",
    )
    agent_token: OptionalSecret = Field(
        default=None, description="Bearer token sent on every agent call"
    )
    agent_max_response_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest agent answer read (results aside)"
    )
    agent_max_results_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest job result read from an agent"
    )
    payload_key: OptionalSecret = Field(
        default=None,
        description="Base64 of 32 bytes: encrypts workflow payloads in Temporal (AES-GCM); "
        "the same on every worker and API server",
    )
    callback_base_url: str | None = Field(
        default=None,
        description="The API's URL as agents reach it; agents then report job ends at once",
    )
    callback_secret: OptionalSecret = Field(
        default=None,
        description="Signs callback URLs; set the same value on API servers and workers",
    )
    task_queue: str = Field(default="ruckus-jobs", description="Temporal task queue of jobs")
    worker_sticky_timeout: float = Field(
        default=3.0,
        gt=0,
        description="Seconds a workflow waits for the worker that has it cached before any "
        "worker takes it: what a crashed worker costs the jobs it was running (Temporal's "
        "default is 10)",
    )
    worker_max_cached_workflows: int = Field(
        default=5000,
        ge=0,
        description="Workflows a worker keeps in memory between their tasks, two per running "
        "job (the job and its agent's queue); a workflow past it replays its whole history at "
        "its next task (Temporal's default is 1000)",
    )
    temporal_namespace: str | None = Field(
        default=None, description="Overrides TEMPORAL_NAMESPACE when set"
    )

    @property
    def policy(self) -> JobPolicy:
        """The job-workflow part of these settings, as a job's input carries it."""
        return JobPolicy.model_validate(self.model_dump(include=set(JobPolicy.model_fields)))


class ServerSettings(BaseSettings):
    """The server's HTTP API (`RUCKUS_*`); storage and jobs have their own settings."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the API listens on")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the API listens on")
    api_key: OptionalSecret = Field(
        default=None,
        description=(
            "When set, every endpoint but /health and the agents' signed callbacks requires "
            "`Authorization: Bearer <key>`"
        ),
    )
    cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_origins)] = Field(
        default=["http://localhost:3000", "http://localhost:5173"],
        description="Other browser origins allowed to call the API (the API's own pages always "
        'are): a JSON list `["https://ui.example"]`, a comma-separated list, or `*` for any '
        "(only with RUCKUS_API_KEY set: without a key, any web page its users open could "
        "drive the API)",
    )
    agent_status_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for one agent's live status"
    )
    dependency_retry_interval: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between tries to reach Temporal or storage while they are down",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger: 413"
    )
    temporal_ui_url: Annotated[str | None, BeforeValidator(_empty_is_unset)] = Field(
        default=None,
        description="The Temporal web UI's address (`http://127.0.0.1:8233`): the console links "
        "each job and run to its workflow there",
    )

    @property
    def allowed_origins(self) -> list[str]:
        """RUCKUS_CORS_ORIGINS and the API's own origins, whose pages call it too."""
        if "*" in self.cors_origins:
            return ["*"]
        own = [f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}"]
        if self.host not in ("0.0.0.0", "::", "localhost", "127.0.0.1"):
            own.append(f"http://{self.host}:{self.port}")
        return list(dict.fromkeys([*self.cors_origins, *own]))
