"""On-disk job records of the agent, so statuses and results outlive a restart."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

from pydantic import ValidationError

from common.models import AwareDatetime, ExperimentSpec, JobResult, JobStatus, WireModel

logger = logging.getLogger(__name__)


class JobRecord(WireModel):
    """Everything the agent remembers about one job."""

    job_id: str
    experiment_id: str
    accepted_at: AwareDatetime
    spec: ExperimentSpec
    status: JobStatus
    result: JobResult | None = None


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
    """One JSON file per job under `data_dir/jobs`, plus the persisted agent id."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.jobs_dir = data_dir / "jobs"
        self.work_dir = data_dir / "work"

    def prepare(self) -> None:
        """Create the folders; raises OSError when the data dir cannot be used."""
        for folder in (self.jobs_dir, self.work_dir):
            folder.mkdir(parents=True, exist_ok=True)

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
        write_atomically(self.jobs_dir / f"{record.job_id}.json", record.model_dump_json(indent=1))

    def load_all(self) -> list[JobRecord]:
        records = []
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                records.append(JobRecord.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValidationError) as exc:
                # One unreadable file must not keep the agent from starting.
                logger.error("ignoring unreadable job record %s: %s", path, exc)
        return records
