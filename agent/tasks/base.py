"""What every task is: a name, the frameworks it runs with, a parameter model and a run method."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.models import ExperimentSpec, FrameworkName, TaskType, WireModel

ParamsT = TypeVar("ParamsT", bound=BaseModel)


class TaskError(Exception):
    """An expected failure whose message is meant for the person who submitted the job."""


class TaskParams(BaseModel):
    """Base of task parameters; unknown keys are ignored so older experiment specs still run."""

    model_config = ConfigDict(extra="ignore")

    min_duration_seconds: float = Field(
        default=0.0, ge=0, description="Repeat the measurement until at least this long has passed"
    )


class TaskOutput(WireModel):
    """What a task hands back; the runner wraps it into a JobResult."""

    output: Any = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    hardware_info: dict[str, Any] = Field(default_factory=dict)
    framework_version: str | None = None
    model_actual: str | None = None


class Task(ABC, Generic[ParamsT]):
    """One kind of work. Subclasses set the class attributes and implement `execute`."""

    task_type: ClassVar[TaskType]
    params_model: ClassVar[type[BaseModel]]
    # Run as asked; `fallback_frameworks` run with the native one instead, and the output says so.
    frameworks: ClassVar[frozenset[FrameworkName]]
    fallback_frameworks: ClassVar[frozenset[FrameworkName]] = frozenset()

    def params(self, spec: ExperimentSpec) -> ParamsT:
        raw = spec.task.params if spec.task.params is not None else {}
        try:
            return self.params_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
                for err in exc.errors()
            )
            raise TaskError(f"invalid params for task type '{self.task_type}': {problems}") from exc

    def framework_note(self, spec: ExperimentSpec) -> str | None:
        """None when the framework runs as asked, a note when it falls back; TaskError otherwise."""
        name = spec.framework.name
        if name in self.frameworks:
            return None
        if name in self.fallback_frameworks:
            native = ", ".join(sorted(self.frameworks))
            return f"framework '{name}' requested; task type '{self.task_type}' ran with {native}"
        raise TaskError(
            f"framework '{name}' is not supported for task type '{self.task_type}' on this agent "
            f"(supported: {', '.join(sorted(self.frameworks | self.fallback_frameworks))})"
        )

    def check(self, spec: ExperimentSpec) -> None:
        """Reject a job before any process starts; raises TaskError."""
        self.params(spec)
        self.framework_note(spec)

    def run(self, spec: ExperimentSpec) -> TaskOutput:
        result = self.execute(spec, self.params(spec))
        note = self.framework_note(spec)
        if note is not None and isinstance(result.output, dict):
            result.output["framework_note"] = note
        return result

    @abstractmethod
    def execute(self, spec: ExperimentSpec, params: ParamsT) -> TaskOutput: ...


def repeat_for(min_duration_seconds: float, measure: Callable[[], None]) -> int:
    """Run `measure` at least once and until `min_duration_seconds` passed; returns the rounds."""
    start = time.perf_counter()
    rounds = 0
    while True:
        measure()
        rounds += 1
        if time.perf_counter() - start >= min_duration_seconds:
            return rounds
