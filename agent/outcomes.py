"""How a job ends: the final JobStatus and JobResult for every way a job can stop."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.redaction import masked, spec_secrets
from agent.store import JobRecord
from agent.system_info import hardware_info
from agent.task_process import TaskOutcome
from common.models import AGENT_RESTARTED, JobResult, JobStatus, JobStatusEnum, utcnow

logger = logging.getLogger(__name__)

# Why a running job was stopped -> its final status, error type and message.
STOPPED = {
    "timeout": (
        JobStatusEnum.TIMEOUT,
        "Timeout",
        "stopped after exceeding its deadline of {deadline:g} s",
    ),
    "cancel": (
        JobStatusEnum.CANCELLED,
        "Cancelled",
        "cancelled on request; its process was stopped",
    ),
    "shutdown": (
        JobStatusEnum.FAILED,
        AGENT_RESTARTED,
        "the agent shut down while the job ran; its process was stopped",
    ),
}
# How a job the agent lost is named: now, and by agents before it had one name for it.
LOST_ERROR_TYPES = frozenset({AGENT_RESTARTED, "AgentRestart", "AgentShutdown"})


def ended(
    record: JobRecord,
    started_at: datetime | None,
    status: JobStatusEnum,
    message: str,
    **result: Any,
) -> JobRecord:
    """The record with its final status and result (`result` holds JobResult fields)."""
    now = utcnow()
    started = started_at or record.accepted_at
    error_type = result.get("error_type")
    return record.model_copy(
        update={
            "status": JobStatus(
                status=status,
                timestamp=now,
                message=message,
                error_type=error_type,
                attempt=record.attempt,
            ),
            "result": JobResult(
                job_id=record.job_id,
                experiment_id=record.experiment_id,
                status=status,
                started_at=started,
                completed_at=now,
                duration_seconds=max(0.0, (now - started).total_seconds()),
                **result,
            ),
        }
    )


def failed(
    record: JobRecord, started_at: datetime | None, error: str, error_type: str
) -> JobRecord:
    return ended(
        record, started_at, JobStatusEnum.FAILED, error, error=error, error_type=error_type
    )


def stopped(
    record: JobRecord, started_at: datetime | None, reason: str, deadline: float
) -> JobRecord:
    status, error_type, template = STOPPED[reason]
    message = template.format(deadline=deadline)
    return ended(record, started_at, status, message, error=message, error_type=error_type)


def interrupted(record: JobRecord) -> JobRecord:
    """A job found unfinished on start: the agent died while it ran (the server may send it
    again, see `lost`)."""
    message = "the agent restarted while this job was running; the job did not finish"
    return failed(record, None, message, AGENT_RESTARTED)


def error_type(record: JobRecord) -> str | None:
    """Why an ended job did not complete, as a name; AgentRestarted for any job the agent lost."""
    named = record.status.error_type or (record.result.error_type if record.result else None)
    if named in LOST_ERROR_TYPES and record.status.status is JobStatusEnum.FAILED:
        return AGENT_RESTARTED
    return named if record.status.status.is_terminal else None


def lost(record: JobRecord) -> bool:
    """The job ended only because the agent stopped or died under it: it may be run again."""
    return error_type(record) == AGENT_RESTARTED


def collected(
    record: JobRecord,
    started_at: datetime | None,
    returncode: int | None,
    outcome_path: Path,
    log_tail: str | None,
) -> JobRecord:
    """The final record of a job whose process exited by itself, from what it left behind."""
    task_type = record.spec.task.type
    try:
        outcome = TaskOutcome.model_validate_json(outcome_path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        message = f"the {task_type} task process exited with code {returncode} and left no result"
        final = failed(record, started_at, message, "ProcessExit")
        return _with_result(final, traceback=log_tail)
    if not outcome.ok:
        message = f"the {task_type} task failed: {outcome.error}"
        final = failed(record, started_at, message, outcome.error_type or "TaskError")
        return _with_result(final, error=outcome.error, traceback=outcome.traceback)
    payload = outcome.payload.model_dump() if outcome.payload else {}
    final = ended(record, started_at, JobStatusEnum.COMPLETED, "", **payload)
    assert final.result is not None
    seconds = final.result.duration_seconds or 0.0
    message = f"completed the {task_type} task in {seconds:.1f} s"
    return final.model_copy(update={"status": final.status.model_copy(update={"message": message})})


def finalized(record: JobRecord) -> JobRecord:
    """The final record as kept and shown: the machine's facts in its result, secrets masked.

    Call it off the event loop: the machine's facts are gathered on first use.
    """
    if record.result is not None:
        try:
            machine = hardware_info()
        except Exception:  # psutil on an odd system: the result stands without the machine
            logger.exception("could not read this machine's facts for job %s", record.job_id)
            machine = {}
        record = _with_result(record, hardware_info=machine | record.result.hardware_info)
    secrets = spec_secrets(record.spec)
    if not secrets:
        return record
    return JobRecord.model_validate(masked(record.model_dump(), secrets))


def _with_result(record: JobRecord, **fields: Any) -> JobRecord:
    assert record.result is not None
    return record.model_copy(update={"result": record.result.model_copy(update=fields)})
