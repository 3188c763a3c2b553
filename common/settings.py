"""Configuration of every Ruckus process, read from `RUCKUS_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".ruckus")


def _empty_is_unset(value: Any) -> Any:
    return value or None


# An empty variable (`RUCKUS_API_KEY=` in a compose file) means "no secret", not "the empty one".
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]


class AgentSettings(BaseSettings):
    """The agent service (`RUCKUS_AGENT_*`)."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_AGENT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    data_dir: Path = DEFAULT_DATA_DIR / "agent"
    agent_id: str | None = Field(
        default=None, description="Stable id; generated and persisted on first start when unset"
    )
    agent_name: str | None = None
    default_timeout_seconds: float = Field(default=3600.0, gt=0)
    token: OptionalSecret = Field(
        default=None, description="When set, every endpoint but /health requires this bearer token"
    )


class StorageSettings(BaseSettings):
    """The server's durable record (`RUCKUS_STORAGE_*`)."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_STORAGE_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; a SQLite file under data_dir when unset",
    )
    pool_size: int = Field(default=10, ge=1)
    echo: bool = False

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ruckus.db').resolve()}"


class JobManagerSettings(BaseSettings):
    """Job orchestration (`RUCKUS_*`); the Temporal connection itself follows `TEMPORAL_*`."""

    model_config = SettingsConfigDict(env_prefix="RUCKUS_", extra="ignore")

    job_status_polling_interval: float = Field(default=5.0, gt=0, description="Seconds")
    agent_call_timeout: float = Field(default=10.0, gt=0, description="Seconds per agent call")
    agent_retry_initial_interval: float = Field(default=1.0, gt=0, description="Seconds")
    agent_retry_maximum_interval: float = Field(default=10.0, gt=0, description="Seconds")
    agent_retry_maximum_attempts: int = Field(default=5, ge=1)
    default_job_timeout: float = Field(default=3600.0, gt=0, description="Seconds")
    busy_agent_recheck_initial: float = Field(default=2.0, gt=0, description="Seconds")
    busy_agent_recheck_maximum: float = Field(default=60.0, gt=0, description="Seconds")
    job_continue_as_new_polls: int = Field(default=500, ge=2)
    queue_continue_as_new_events: int = Field(default=2000, ge=10)
    agent_token: OptionalSecret = Field(
        default=None, description="Bearer token sent on every agent call"
    )
    task_queue: str = "ruckus-jobs"
    temporal_namespace: str | None = Field(
        default=None, description="Overrides TEMPORAL_NAMESPACE when set"
    )
