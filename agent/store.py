"""On-disk job records of the agent, so statuses and results outlive a restart.

One JSON file per job under `data_dir/jobs` (the truth), with its log beside it, indexed by
`data_dir/jobs.sqlite3`, so that nothing at start or in /status reads more than a few of them,
and records past their retention are deleted (with their logs) without reading any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import Field, TypeAdapter, ValidationError

from agent.job_index import JobIndex, Row
from common.models import (
    AvailableResult,
    AwareDatetime,
    ExperimentSpec,
    JobResult,
    JobStatus,
    JobStatusEnum,
    ResultType,
    WireModel,
)

logger = logging.getLogger(__name__)


class JobRecord(WireModel):
    """Everything the agent remembers about one job."""

    job_id: str
    experiment_id: str
    accepted_at: AwareDatetime
    spec: ExperimentSpec
    status: JobStatus
    result: JobResult | None = None
    # How many times the agent has run it: a job it lost is run again when sent again.
    attempt: int = Field(default=1, ge=1)

    @property
    def ended_at(self) -> datetime | None:
        if not self.status.status.is_terminal:
            return None
        return self.result.completed_at if self.result else self.status.timestamp

    @property
    def result_type(self) -> ResultType | None:
        return RESULT_TYPES[self.status.status] if self.result is not None else None


# How each ending is classified in `available_results` (the existing agents' result types).
RESULT_TYPES = {
    JobStatusEnum.COMPLETED: ResultType.SUCCESS,
    JobStatusEnum.CANCELLED: ResultType.CANCELLED,
    JobStatusEnum.FAILED: ResultType.EXECUTION,
    JobStatusEnum.TIMEOUT: ResultType.EXECUTION,
}
_MOMENT: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
REBUILD_BATCH = 5000
# What a failing disk raises from the records or their index.
STORE_ERRORS = (OSError, sqlite3.Error)


class UnreadableRecordError(Exception):
    """A job's record is on disk but cannot be read."""


def write_atomically(path: Path, text: str) -> None:
    """Write via a temp file and os.replace, so a crash never leaves half a file behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class JobStore:
    """The job records, their index and the persisted agent id, under one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.jobs_dir = data_dir / "jobs"
        self.work_dir = data_dir / "work"
        self.index = JobIndex(data_dir / "jobs.sqlite3")

    def prepare(self) -> None:
        """Create the folders and open the index (built once from the records when missing).

        Raises OSError when the data dir cannot be used.
        """
        for folder in (self.jobs_dir, self.work_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.index.open():
            self._build_index()

    def close(self) -> None:
        self.index.close()

    def writable(self) -> bool:
        return all(os.access(d, os.W_OK | os.X_OK) for d in (self.jobs_dir, self.work_dir))

    def agent_id(self, configured: str | None) -> str:
        """The configured id, else the one persisted on first start (created now if missing)."""
        if configured:
            return configured
        path = self.data_dir / "agent_id"
        with contextlib.suppress(FileNotFoundError):
            stored = path.read_text(encoding="utf-8").strip()
            if stored:
                return stored
        new_id = f"agent_{uuid.uuid4().hex[:12]}"
        write_atomically(path, new_id + "\n")
        return new_id

    def clear_work_files(self) -> None:
        for path in self.work_dir.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)

    def save(self, record: JobRecord) -> None:
        # Indexed before its file exists and updated after: an index row is never missing for
        # a record, and one left unfinished by a crash is checked against its file at start.
        self.index.begin(record.job_id)
        write_atomically(self._path(record.job_id), record.model_dump_json(indent=1))
        self.index.put([(record.job_id, record.ended_at, record.result_type)])

    def exists(self, job_id: str) -> bool:
        return self._path(job_id).exists()

    def load(self, job_id: str) -> JobRecord | None:
        """The record, None when there is none; UnreadableRecordError when it is damaged."""
        try:
            text = self._path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            message = f"the record of job '{job_id}' cannot be read: {exc}"
            raise UnreadableRecordError(message) from exc
        try:
            return JobRecord.model_validate_json(text)
        except ValidationError as exc:
            raise UnreadableRecordError(
                f"the record of job '{job_id}' is damaged: {exc.errors()[0]['msg']}"
            ) from exc

    def unfinished(self) -> list[JobRecord]:
        """Records the index holds unfinished; the index is corrected from the files first."""
        found = []
        for job_id in self.index.unfinished():
            try:
                record = self.load(job_id)
            except UnreadableRecordError as exc:
                logger.error("ignoring a job record: %s", exc)
                record = None
            if record is None:
                self.index.remove([job_id])  # the agent died before its first write
            elif record.status.status.is_terminal:
                self.index.put([(job_id, record.ended_at, record.result_type)])
            else:
                found.append(record)
        return found

    def newest_results(self, limit: int) -> list[AvailableResult]:
        return self.index.newest_results(limit) if limit > 0 else []

    def count(self) -> int:
        return self.index.count()

    def prune(self, keep: int, ended_before: datetime, batch: int = 1000) -> list[str]:
        """Delete the ended records past retention; returns their job ids."""
        removed: list[str] = []
        while expired := self.index.expired(keep, ended_before, batch):
            for job_id in expired:
                self._path(job_id).unlink(missing_ok=True)
                self.log_path(job_id).unlink(missing_ok=True)
            self.index.remove(expired)
            removed += expired
        return removed

    def _path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{job_id}.json"

    def log_path(self, job_id: str) -> Path:
        """The job's log, beside its record (agent.job_log)."""
        return self.jobs_dir / f"{job_id}.log"

    def _build_index(self) -> None:
        """Index every record on disk: once, for a data dir written before the index existed."""
        # Sorted, rows go into the index's B-tree in order: about twice as fast.
        rows = sorted(self._scan())
        for start in range(0, len(rows), REBUILD_BATCH):
            self.index.put(rows[start : start + REBUILD_BATCH])
        self.index.mark_complete()
        logger.info("indexed %d job records in %s", len(rows), self.jobs_dir)

    def _scan(self) -> Iterator[Row]:
        with os.scandir(self.jobs_dir) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or not name.endswith(".json"):
                    continue
                try:
                    with open(entry.path, "rb") as handle:
                        data = pydantic_core.from_json(handle.read())
                    yield _row(name.removesuffix(".json"), data)
                except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
                    # One unreadable file must not keep the agent from starting.
                    logger.error("ignoring unreadable job record %s: %s", entry.path, exc)


def _row(job_id: str, data: dict[str, Any]) -> Row:
    """The index row of a record read as plain JSON (parsing whole records is what is slow)."""
    if data["job_id"] != job_id:
        raise ValueError(f"it holds job '{data['job_id']}'")
    status = JobStatusEnum(data["status"]["status"])
    if not status.is_terminal:
        return job_id, None, None
    result = data.get("result")
    ended = (result or {}).get("completed_at") or data["status"]["timestamp"]
    kind = RESULT_TYPES[status] if result else None
    return job_id, _MOMENT.validate_python(ended), kind
