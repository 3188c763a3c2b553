"""Agent data dirs as agents before the job index wrote them: one JSON record per job, no index.

The record layout is the one those agents wrote (a result's hardware_info then held only NumPy's
facts); the files are written directly, so a hundred thousand take seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

AGENT_ID = "agent_0ld0ld0ld0ld"
# Midnight a week ago: well within the default retention of 30 days.
BASE = (datetime.now(UTC) - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def old_record(job_id: str, ended: datetime, status: str = "completed") -> dict[str, Any]:
    """A finished memory_benchmark job (or, with status "running", one still running)."""
    started = ended - timedelta(seconds=2)
    spec = {
        "id": "exp_0ld",
        "name": "memory test",
        "description": None,
        "model": "none",
        "task": {
            "name": "memory_benchmark",
            "type": "memory_benchmark",
            "description": None,
            "params": {"test_sizes_mb": [1]},
        },
        "framework": {"name": "numpy", "params": None},
        "metrics": {"metrics": {}},
        "capability_requirements": None,
        "created_at": iso(started),
        "updated_at": iso(started),
    }
    record: dict[str, Any] = {
        "job_id": job_id,
        "experiment_id": "exp_0ld",
        "accepted_at": iso(started),
        "spec": spec,
        "status": {"status": status, "timestamp": iso(ended), "message": f"old job {status}"},
        "result": None,
    }
    if status == "running":
        return record
    failed = status != "completed"
    record["result"] = {
        "job_id": job_id,
        "experiment_id": "exp_0ld",
        "status": status,
        "started_at": iso(started),
        "completed_at": iso(ended),
        "duration_seconds": 2.0,
        "output": None if failed else {"results": [{"size_mb": 1, "gbps": 9.5}]},
        "metrics": {} if failed else {"peak_sequential_gbps": 9.5},
        "model_actual": None,
        "framework_version": "2.0.0",
        "hardware_info": {"numpy_version": "2.0.0", "logical_cpus": 8},
        "artifacts": [],
        "error": "it failed" if failed else None,
        "error_type": "TaskError" if failed else None,
        "traceback": None,
    }
    return record


def write_data_dir(data_dir: Path, records: list[dict[str, Any]]) -> None:
    jobs = data_dir / "jobs"
    jobs.mkdir(parents=True)
    (data_dir / "work").mkdir()
    (data_dir / "agent_id").write_text(AGENT_ID + "\n")
    for record in records:
        (jobs / f"{record['job_id']}.json").write_text(json.dumps(record, indent=1))


def write_many(data_dir: Path, count: int) -> list[str]:
    """`count` finished jobs, one second apart from BASE, every 10th failed; their ids in order.

    Serialised once and filled in per job: json.dumps per record would take most of the time.
    """
    jobs = data_dir / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (data_dir / "work").mkdir(exist_ok=True)
    (data_dir / "agent_id").write_text(AGENT_ID + "\n")
    templates = {
        status: json.dumps(old_record("JOB_ID", BASE, status), indent=1)
        for status in ("completed", "failed")
    }
    ids = []
    for i in range(count):
        job_id = f"job_{i:08d}"
        ended = BASE + timedelta(seconds=i)
        text = templates["failed" if i % 10 == 9 else "completed"]
        text = text.replace("JOB_ID", job_id).replace(iso(BASE), iso(ended))
        text = text.replace(iso(BASE - timedelta(seconds=2)), iso(ended - timedelta(seconds=2)))
        (jobs / f"{job_id}.json").write_text(text)
        ids.append(job_id)
    return ids
