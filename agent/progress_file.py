"""A running task's stage and fraction done, passed from its process to the agent in a small file.

The job's process keeps the latest report in memory and a thread writes it, at most a few times a
second, by atomic rename: the agent reads it when asked for the job's status and never sees half
a file. A task may report thousands of times a second; the disk sees only what someone can read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, ValidationError

from agent.redaction import mask_text
from common.models import WireModel

FLUSH_SECONDS = 0.25
STAGE_MAX_CHARS = 500  # JobStatus.stage's limit


class TaskProgress(WireModel):
    stage: str = Field(max_length=STAGE_MAX_CHARS)
    progress: float | None = Field(default=None, ge=0, le=1)


def read_progress(path: Path) -> TaskProgress | None:
    """The latest report, None before the first (or when the file cannot be read)."""
    try:
        return TaskProgress.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


class ProgressWriter:
    """The sink of agent.tasks.progress in a job's process: reports go to `path`."""

    def __init__(self, path: Path, secrets: Sequence[str] = ()) -> None:
        self.path = path
        self._secrets = list(secrets)
        self._lock = threading.Lock()
        self._latest: tuple[str, float | None] | None = None
        self._written: tuple[str, float | None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-writer", daemon=True)
        self._thread.start()

    def __call__(self, stage: str, progress: float | None) -> None:
        with self._lock:
            last = self._latest[1] if self._latest else None
            # The fraction shown never goes back: estimates of the whole may shrink a little.
            if progress is not None and last is not None:
                progress = max(progress, last)
            elif progress is None:
                progress = last
            self._latest = (stage, progress)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            latest = self._latest
        if latest is None or latest == self._written:
            return
        stage, progress = latest
        # Masked before it is cut, as everything the agent keeps (agent.redaction).
        shown = TaskProgress(
            stage=mask_text(stage, self._secrets)[:STAGE_MAX_CHARS], progress=progress
        )
        with contextlib.suppress(OSError):  # a lost report is only a stale stage
            _replace(self.path, shown.model_dump_json())
            self._written = latest


def _replace(path: Path, text: str) -> None:
    # No fsync: the file is only for the living agent, and it is deleted when the job ends.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
