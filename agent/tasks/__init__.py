"""The tasks this agent can execute: each task module here registers one."""

from __future__ import annotations

import importlib
import pkgutil

from agent.tasks.base import Task, TaskError
from common.models import ExperimentSpec, TaskType

_TASKS: dict[TaskType, Task] = {}
_discovered = False
# The modules every task builds on; they register nothing.
_NOT_TASKS = frozenset({"base", "output", "progress", "repeats"})


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its task type."""
    _TASKS[cls.task_type] = cls()
    return cls


def _discover() -> None:
    # Importing each module runs its @register, so adding a task is adding a module.
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_TASKS and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def supported_tasks() -> dict[TaskType, Task]:
    # Not "while empty": a task module imported on its own registers only itself.
    global _discovered
    if not _discovered:
        _discover()
        _discovered = True
    return dict(_TASKS)


def resolve(spec: ExperimentSpec) -> Task:
    """The task for this experiment, checked; raises TaskError with a message for the user."""
    task = supported_tasks().get(spec.task.type)
    if task is None:
        raise TaskError(f"task type '{spec.task.type}' is not supported by this agent yet")
    task.check(spec)
    return task


__all__ = ["Task", "TaskError", "register", "resolve", "supported_tasks"]
