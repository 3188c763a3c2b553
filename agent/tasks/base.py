"""What every task is: a name, the frameworks it runs with, a parameter model and a run method."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from pydantic import Field, ValidationError

from agent.redaction import inline_secrets
from agent.tasks import progress
from agent.tasks.output import TaskError, TaskOutput
from agent.tasks.repeats import repeated
from common.models import ExperimentSpec, TaskType, WireModel
from common.params import (
    TASK_KINDS,
    TaskKind,
    TaskParams,
    check_spec,
    framework_names,
    params_of,
)

ParamsT = TypeVar("ParamsT", bound=TaskParams)


class TaskCapability(WireModel):
    """Whether this agent can run a task right now, and with which frameworks."""

    available: bool = True
    reason: str | None = None
    frameworks: list[str] = Field(default_factory=list)
    accepted_frameworks: list[str] = Field(default_factory=list)


class Task(ABC, Generic[ParamsT]):
    """One kind of work. Subclasses set `task_type` and implement `execute` (one run).

    Its params model and frameworks are the task type's `TaskKind` (common.params), the same
    the server validates experiments with.
    """

    task_type: ClassVar[TaskType]

    @property
    def kind(self) -> TaskKind:
        return TASK_KINDS[self.task_type]

    def params(self, spec: ExperimentSpec) -> ParamsT:
        """The task's parameters: `task.params` over `framework.params` (a task key wins)."""
        try:
            return params_of(spec)  # type: ignore[return-value]
        except ValidationError as exc:
            raise TaskError(
                f"invalid params for task type '{self.task_type}': {_listed(exc)}"
            ) from exc

    def framework_note(self, spec: ExperimentSpec) -> str | None:
        """None when the framework runs as asked, a note when it falls back; TaskError otherwise."""
        name, kind = spec.framework.name, self.kind
        if name in kind.frameworks:
            return None
        if name in kind.fallback_frameworks:
            native = kind.runs_with or ", ".join(sorted(kind.frameworks))
            return f"framework '{name}' requested; task type '{self.task_type}' ran with {native}"
        raise TaskError(
            f"framework '{name}' is not supported for task type '{self.task_type}' on this agent "
            f"(supported: {', '.join(sorted(kind.accepted_frameworks))})"
        )

    def capability(self) -> TaskCapability:
        """What /api/v1/info reports for this task; tasks that need hardware override it."""
        return TaskCapability(
            frameworks=framework_names(self.kind.frameworks),
            accepted_frameworks=framework_names(self.kind.accepted_frameworks),
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
        self.framework_note(spec)
        try:
            # What the server checks when the experiment is created, for specs it did not check.
            params = check_spec(spec)
        except ValidationError as exc:
            raise TaskError(
                f"invalid experiment spec for task type '{self.task_type}': {_listed(exc)}"
            ) from exc
        self.guard(spec, params)  # type: ignore[arg-type]

    def guard(self, spec: ExperimentSpec, params: ParamsT) -> None:
        """Refuse, before anything is allocated, a job this machine cannot hold; TaskError."""

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


def _listed(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def repeat_for(min_duration_seconds: float, measure: Callable[[], None]) -> int:
    """Run `measure` at least once and until `min_duration_seconds` passed; returns the rounds.

    What `measure` reports (its fraction of one round) becomes a fraction of all the rounds.
    """
    start = time.perf_counter()
    rounds = 0
    last_round: float | None = None
    while True:
        began = time.perf_counter() - start
        label = f"round {rounds + 1}" if rounds else None
        with progress.scaled(label, _rounds_scale(start, began, min_duration_seconds, last_round)):
            measure()
        rounds += 1
        elapsed = time.perf_counter() - start
        last_round = elapsed - began
        if elapsed >= min_duration_seconds:
            return rounds


def _rounds_scale(
    start: float, began: float, minimum: float, last_round: float | None
) -> progress.Scale:
    """Time passed over the time the rounds should take: the minimum, or longer when the round
    under way (timed from its own fraction done so far, else as long as the last) ends later."""

    def scale(done: float | None) -> float:
        now = time.perf_counter() - start
        round_time = (now - began) / done if done else (last_round or 0.0)
        total = max(minimum, began + round_time, now)
        return now / total if total > 0 else (done or 0.0)

    return scale
