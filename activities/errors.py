"""How activity failures are named, so workflows can tell them apart."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from common.agent_client import AgentCallError

AGENT_CALL_FAILED = "AgentCallFailed"
AGENT_REJECTED = "AgentRejected"
AGENT_BUSY = "AgentBusy"
AGENT_UNKNOWN_JOB = "AgentUnknownJob"
STORAGE_CONFLICT = "StorageConflict"
# The job's id holds another job in storage: the submission draws another id.
JOB_ID_TAKEN = "JobIdTaken"
# Dispatch's status call failed: the agent never said it was idle, so the job was not sent.
AGENT_STATUS_FAILED = "AgentStatusFailed"

# Retrying these cannot help: the agent or the database said no.
NON_RETRYABLE = [AGENT_REJECTED, AGENT_BUSY, AGENT_UNKNOWN_JOB, STORAGE_CONFLICT, JOB_ID_TAKEN]


def agent_failure(err: AgentCallError) -> ApplicationError:
    """Transient failures (connection, timeout, 5xx) stay retryable; 4xx answers do not."""
    if err.status_code == 409:
        kind = AGENT_BUSY
    elif err.status_code == 404:
        kind = AGENT_UNKNOWN_JOB
    elif err.retryable:
        kind = AGENT_CALL_FAILED
    else:
        kind = AGENT_REJECTED
    return ApplicationError(str(err), type=kind, non_retryable=not err.retryable)
