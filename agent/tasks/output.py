"""What a task hands back (`TaskOutput`) or raises for the user (`TaskError`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.models import WireModel


class TaskError(Exception):
    """An expected failure whose message is meant for the person who submitted the job."""


class TaskOutput(WireModel):
    """What a task hands back; the runner wraps it into a JobResult."""

    output: Any = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    hardware_info: dict[str, Any] = Field(default_factory=dict)
    framework_version: str | None = None
    model_actual: str | None = None
