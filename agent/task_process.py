"""The child process that runs one task:
`python -m agent.task_process SPEC OUTCOME PROGRESS AGENT_PID`.

Its stdout and stderr are the job's log (the agent reads them from a pipe); the task's own lines
(agent.tasks.progress.log) go to stdout, its stage and fraction done to the PROGRESS file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from agent.progress_file import ProgressWriter
from agent.redaction import masked, spec_secrets
from agent.store import write_atomically
from agent.tasks import TaskError, progress, resolve
from agent.tasks.base import TaskOutput
from common.models import ExperimentSpec, WireModel


class TaskOutcome(WireModel):
    """What the child leaves for the runner: the task's output, or why it failed."""

    ok: bool
    payload: TaskOutput | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None


def _exit_when_orphaned(agent_pid: int) -> None:
    # The task runs in its own session, so nothing else stops it if the agent is killed.
    # The agent passes its pid: it may have died before this process got here.
    def watch() -> None:
        while os.getppid() == agent_pid:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run(spec: ExperimentSpec) -> TaskOutcome:
    try:
        return TaskOutcome(ok=True, payload=resolve(spec).run(spec))
    except TaskError as exc:
        return TaskOutcome(ok=False, error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:
        progress.log.exception("the task raised %s", type(exc).__name__)
        return TaskOutcome(
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
        )


def _task_lines_to_stdout() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    progress.log.addHandler(handler)
    progress.log.setLevel(logging.INFO)
    progress.log.propagate = False


def main(argv: list[str]) -> int:
    spec_path, outcome_path, progress_path = Path(argv[0]), Path(argv[1]), Path(argv[2])
    _exit_when_orphaned(int(argv[3]))
    _task_lines_to_stdout()
    spec = ExperimentSpec.model_validate_json(spec_path.read_text(encoding="utf-8"))
    writer = ProgressWriter(progress_path, spec_secrets(spec))
    progress.set_sink(writer)
    try:
        outcome = run(spec)
    finally:
        progress.set_sink(None)
        writer.close()
    # Masked before it touches the disk: the outcome file is in the agent's data dir.
    outcome = TaskOutcome.model_validate(masked(outcome.model_dump(), spec_secrets(spec)))
    write_atomically(outcome_path, outcome.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
