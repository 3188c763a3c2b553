"""What every task is: a name, the frameworks it runs with, a parameter model and a run method."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.redaction import inline_secrets
from agent.tasks.output import TaskError, TaskOutput
from agent.tasks.repeats import repeated
from common.models import ExperimentSpec, FrameworkName, TaskType, WireModel

MAX_RUNS = 1000


class TaskParams(BaseModel):
    """Base of task parameters; unknown keys are ignored so older experiment specs still run."""

    model_config = ConfigDict(extra="ignore")

    min_duration_seconds: float = Field(
        default=0.0, ge=0, description="Repeat the measurement until at least this long has passed"
    )
    runs: int = Field(
        default=1,
        ge=1,
        le=MAX_RUNS,
        description="Run the task this many times: the first is the cold start, the rest warm",
    )


ParamsT = TypeVar("ParamsT", bound=TaskParams)


class TaskCapability(WireModel):
    """Whether this agent can run a task right now, and with which frameworks."""

    available: bool = True
    reason: str | None = None
    frameworks: list[str] = Field(default_factory=list)
    accepted_frameworks: list[str] = Field(default_factory=list)


class Task(ABC, Generic[ParamsT]):
    """One kind of work. Subclasses set the class attributes and implement `execute` (one run)."""

    task_type: ClassVar[TaskType]
    params_model: ClassVar[type[TaskParams]]
    # Run as asked; `fallback_frameworks` run with the native one instead, and the output says so.
    frameworks: ClassVar[frozenset[FrameworkName]]
    fallback_frameworks: ClassVar[frozenset[FrameworkName]] = frozenset()
    # How the fallback note names what ran instead (default: the native framework names).
    runs_with: ClassVar[str | None] = None

    def params(self, spec: ExperimentSpec) -> ParamsT:
        """The task's parameters: `task.params` over `framework.params` (a task key wins)."""
        raw: dict[str, Any] = {}
        for source in (spec.framework.params, spec.task.params):
            if isinstance(source, dict):
                raw |= source
            elif source is not None:
                raise TaskError(
                    f"params must be a mapping of names to values, not {type(source).__name__}"
                )
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
            native = self.runs_with or ", ".join(sorted(self.frameworks))
            return f"framework '{name}' requested; task type '{self.task_type}' ran with {native}"
        raise TaskError(
            f"framework '{name}' is not supported for task type '{self.task_type}' on this agent "
            f"(supported: {', '.join(sorted(self.frameworks | self.fallback_frameworks))})"
        )

    def capability(self) -> TaskCapability:
        """What /api/v1/info reports for this task; tasks that need hardware override it."""
        return TaskCapability(
            frameworks=_names(self.frameworks),
            accepted_frameworks=_names(self.frameworks | self.fallback_frameworks),
        )

    def check(self, spec: ExperimentSpec) -> None:
        """Reject a job before any process starts; raises TaskError."""
        if found := inline_secrets(spec):
            raise TaskError(
                f"the experiment spec carries a secret inline ({', '.join(found)}); a key is never "
                "accepted in a spec, where it would be stored and shown: set it in an environment "
                "variable where the agent runs and name that variable with api_key_env "
                '(e.g. "api_key_env": "OPENAI_API_KEY")'
            )
        self.params(spec)
        self.framework_note(spec)

    def run(self, spec: ExperimentSpec) -> TaskOutput:
        """All the runs the spec asks for (`runs`), combined; see agent.tasks.repeats."""
        params = self.params(spec)
        result = repeated(lambda: self.execute(spec, params), params.runs)
        note = self.framework_note(spec)
        if note is not None and isinstance(result.output, dict):
            result.output["framework_note"] = note
        return result

    @abstractmethod
    def execute(self, spec: ExperimentSpec, params: ParamsT) -> TaskOutput:
        """One run of the task."""


def _names(frameworks: frozenset[FrameworkName]) -> list[str]:
    # `unknown` is what a spec without a framework says; it names nothing an agent can run.
    return sorted(str(f) for f in frameworks if f is not FrameworkName.UNKNOWN)


def repeat_for(min_duration_seconds: float, measure: Callable[[], None]) -> int:
    """Run `measure` at least once and until `min_duration_seconds` passed; returns the rounds."""
    start = time.perf_counter()
    rounds = 0
    while True:
        measure()
        rounds += 1
        if time.perf_counter() - start >= min_duration_seconds:
            return rounds
