"""Runs one job at a time in a child process, with a deadline and a cancel that really stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agent import child, job_log, notify, outcomes
from agent.job_log import RunningLog, agent_line
from agent.notify import CallbackOrigins, Notifier
from agent.progress_file import read_progress
from agent.redaction import redacted, spec_secrets
from agent.retention import Retention
from agent.store import STORE_ERRORS, JobRecord, JobStore
from agent.tasks import TaskError, resolve, supported_tasks
from common.models import (
    AgentJobStatus,
    AgentStatus,
    AgentStatusEnum,
    AvailableResult,
    ExecuteJobRequest,
    JobLog,
    JobStatus,
    JobStatusEnum,
    utcnow,
)
from common.settings import AgentSettings

logger = logging.getLogger(__name__)

# Records kept in memory besides the running job's: the latest few, which the server asks about
# right after they end. Everything else is read from disk when asked for.
CACHED_RECORDS = 16


class AgentBusyError(Exception):
    """Another job is running; the agent runs one at a time."""

    def __init__(self, running_job_id: str) -> None:
        super().__init__(
            f"the agent is busy with job '{running_job_id}' and runs one job at a time; "
            "submit again when it has finished"
        )
        self.running_job_id = running_job_id


class AgentUnavailableError(Exception):
    """The agent cannot run jobs at all (its data directory is unusable)."""


@dataclass(eq=False)
class _ActiveJob:
    record: JobRecord
    deadline_seconds: float
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = "cancel"  # or "shutdown"
    supervisor: asyncio.Task[None] | None = None
    process: child.Process | None = None
    started_at: datetime | None = None
    # Kept in memory only: the URLs carry the server's token for this job.
    callback_urls: list[str] = field(default_factory=list)
    log: RunningLog | None = None


class JobRunner:
    """The agent's job table and its single execution slot."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.store = JobStore(settings.data_dir)
        # The latest records by job id, oldest first (see CACHED_RECORDS).
        self.cached: OrderedDict[str, JobRecord] = OrderedDict()
        self.active: _ActiveJob | None = None
        self.agent_id = settings.agent_id or ""
        self._startup_error: str | None = None
        self._started = time.monotonic()
        self.retention = Retention(settings, self.store, self.cached)
        self.notifier = Notifier()
        self.callback_origins = CallbackOrigins(settings)

    # Lifecycle

    def start(self) -> None:
        """Open the job records; a job that was running when the agent died is marked failed.

        Only the index and unfinished records are read, so start-up does not grow with history.
        """
        supported_tasks()  # import the task modules now rather than during the first request
        try:
            self.store.prepare()
            self.agent_id = self.store.agent_id(self.settings.agent_id)
            unfinished = self.store.unfinished()
            self.store.clear_work_files()  # nothing runs yet, so whatever is there is left over
        except STORE_ERRORS as exc:
            self._startup_error = (
                f"the data directory {self.settings.data_dir} is not usable: "
                f"{getattr(exc, 'strerror', None) or exc}"
            )
            self.agent_id = self.agent_id or f"agent_{uuid.uuid4().hex[:12]}"
            logger.error("the agent cannot run jobs: %s", self._startup_error)
            return
        for record in unfinished:
            lost = outcomes.finalized(outcomes.interrupted(record))
            self._log_quietly(lost, f"{lost.status.message} (attempt {lost.attempt})")
            self._save_quietly(lost)
        self.retention.start()
        logger.info("agent %s ready; %d job records on disk", self.agent_id, self.store.count())

    async def shutdown(self) -> None:
        job = self.active
        if job is not None and job.supervisor is not None:
            job.stop_reason = "shutdown"
            job.stop_requested.set()
            await asyncio.shield(job.supervisor)
        await self.retention.stop()
        await self.notifier.aclose()
        self.store.close()

    # Queries

    @property
    def problem(self) -> str | None:
        """Why the agent cannot run jobs, or None when it can."""
        if self._startup_error:
            return self._startup_error
        if not self.store.writable():
            return f"the data directory {self.settings.data_dir} is not writable"
        return None

    def agent_status(self) -> AgentStatus:
        job = self.active
        if self.problem:
            status = AgentStatusEnum.ERROR
        else:
            status = AgentStatusEnum.ACTIVE if job else AgentStatusEnum.IDLE
        return AgentStatus(
            agent_id=self.agent_id,
            status=status,
            running_jobs=[job.record.job_id] if job else [],
            current_job_id=job.record.job_id if job else None,
            current_experiment_id=job.record.experiment_id if job else None,
            uptime_seconds=time.monotonic() - self._started,
            available_results=self._newest_results(),
        )

    async def find(self, job_id: str) -> JobRecord | None:
        """The job's record: the running one, a recent one, else read from disk."""
        job = self.active
        if job is not None and job.record.job_id == job_id:
            return job.record
        if (record := self.cached.get(job_id)) is not None:
            return record
        if self._startup_error:
            return None
        return await asyncio.to_thread(self.store.load, job_id)

    async def status_of(self, job_id: str) -> AgentJobStatus | None:
        record = await self.find(job_id)
        return None if record is None else self.status_answer(record)

    async def log_of(self, job_id: str, offset: int) -> JobLog | None:
        """The job's log from `offset`; `complete` once it has ended and all of it was read."""
        record = await self.find(job_id)
        if record is None:
            return None
        # Read before the log: a job seen ended has its log closed (see _supervise).
        ended = record.status.status.is_terminal and not self._running(job_id)
        path = self.store.log_path(job_id)
        text, next_offset, size = await asyncio.to_thread(job_log.read, path, offset)
        return JobLog(
            job_id=job_id,
            offset=offset,
            next_offset=next_offset,
            text=text,
            complete=ended and next_offset >= size,
        )

    # Commands

    async def submit(self, request: ExecuteJobRequest) -> tuple[JobRecord, bool]:
        """Start a job: (record, True); a job id already known is not run again: (record, False),
        unless the agent lost that job (it stopped or died while the job ran): it runs again."""
        known = None
        if self._known(request.job_id):
            known = await self.find(request.job_id)
            if known is not None and not outcomes.lost(known):
                return known, False
        # No await from here until the job is registered: the check and the claim are one step.
        if self._running(request.job_id):
            assert self.active is not None
            return self.active.record, False  # sent again while the earlier sending runs it
        if self.active is not None:
            raise AgentBusyError(self.active.record.job_id)
        if problem := self.problem:
            raise AgentUnavailableError(f"this agent cannot run jobs: {problem}")
        # A credential put inline is masked before the spec is stored; the task refuses the job.
        spec, now = redacted(request.experiment_spec), utcnow()
        attempt = known.attempt + 1 if known is not None else 1
        record = JobRecord(
            job_id=request.job_id,
            experiment_id=spec.id,
            accepted_at=now,
            spec=spec,
            status=JobStatus(
                status=JobStatusEnum.RUNNING,
                timestamp=now,
                message=f"accepted; starting the {spec.task.type} task",
                attempt=attempt,
            ),
            attempt=attempt,
        )
        callbacks = self.callback_origins.allowed(record.job_id, notify.callback_urls(request))
        try:
            resolve(spec)
        except TaskError as exc:
            record = outcomes.failed(record, None, str(exc), type(exc).__name__)
            self._remember(record)
            record = await asyncio.to_thread(outcomes.finalized, record)
            self._log_quietly(record, f"refused: {record.status.message}")
            self._remember(record)
            await self._save(record)
            self.notifier.job_ended(callbacks, record.job_id, record.status)
            return record, True
        self._remember(record)
        timeout = spec.timeout_seconds
        job = _ActiveJob(record, float(timeout or self.settings.default_timeout_seconds))
        job.callback_urls = callbacks
        self.active = job
        job.supervisor = asyncio.create_task(self._supervise(job), name=f"job {record.job_id}")
        return record, True

    async def cancel(self, job_id: str) -> AgentJobStatus | None:
        """Stop the job if it runs (returns once its process is gone); a finished job is kept."""
        job = self.active
        if job is not None and job.record.job_id == job_id and job.supervisor is not None:
            job.stop_requested.set()
            # Shielded: a client that hangs up must not abort the bookkeeping of the stop.
            await asyncio.shield(job.supervisor)
        return await self.status_of(job_id)

    # The one running job

    async def _supervise(self, job: _ActiveJob) -> None:
        job_id = job.record.job_id
        try:
            final = await self._execute(job)
        except Exception as exc:  # the runner itself failed (disk, spawn): the job must still end
            logger.exception("job %s: the agent could not run it", job_id)
            message = f"the agent could not run the job: {exc}"
            final = outcomes.failed(job.record, job.started_at, message, type(exc).__name__)
        finally:
            # Reached with the process alive only if this task itself was cancelled.
            if job.process is not None:
                child.send(job.process, signal.SIGKILL)
        final = await asyncio.to_thread(outcomes.finalized, final)
        if job.log is not None:  # closed before anyone can see the job ended
            job.log.close(f"ended {final.status.status}: {final.status.message}")
        # The final status and a free slot appear together: no reader sees one without the other.
        self._remember(final)
        self.active = None
        await self._save(final)
        self.notifier.job_ended(job.callback_urls, job_id, final.status)
        for path in self._work_paths(job_id).values():
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        logger.info("job %s ended %s: %s", job_id, final.status.status, final.status.message)

    async def _execute(self, job: _ActiveJob) -> JobRecord:
        record, paths = job.record, self._work_paths(job.record.job_id)
        await self._save(record)
        log_path = self.store.log_path(record.job_id)
        job.log = RunningLog(log_path, self.settings.job_log_max_bytes, spec_secrets(record.spec))
        job.log.note(job_log.accepted_line(record))
        await asyncio.to_thread(paths["spec"].write_text, record.spec.model_dump_json(), "utf-8")
        job.process = await child.spawn(paths["spec"], paths["outcome"], paths["progress"])
        job.started_at = utcnow()
        assert job.process.stdout is not None
        output = asyncio.create_task(job.log.copy(job.process.stdout))
        message = (
            f"running the {record.spec.task.type} task in process {job.process.pid} "
            f"(deadline {job.deadline_seconds:g} s)"
        )
        job.log.note(message)
        job.record = record.model_copy(
            update={
                "status": JobStatus(
                    status=JobStatusEnum.RUNNING, message=message, attempt=record.attempt
                )
            }
        )
        self._remember(job.record)
        try:
            ended_by = await child.wait(job.process, job.stop_requested, job.deadline_seconds)
            if ended_by != "exited":
                await child.stop(job.process)
        finally:
            await child.drain_output(output)
        if ended_by == "exited":
            return await asyncio.to_thread(
                outcomes.collected,
                job.record,
                job.started_at,
                job.process.returncode,
                paths["outcome"],
                job.log.tail or None,
            )
        reason = job.stop_reason if ended_by == "stop" else "timeout"
        return outcomes.stopped(job.record, job.started_at, reason, job.deadline_seconds)

    def _log_quietly(self, record: JobRecord, text: str) -> None:
        """A line of the agent's own in the log of a job that is not running (masked already)."""
        try:
            job_log.append(
                self.store.log_path(record.job_id),
                self.settings.job_log_max_bytes,
                agent_line(text),
            )
        except OSError as exc:
            logger.error("job %s: could not write its log: %s", record.job_id, exc)

    def _work_paths(self, job_id: str) -> dict[str, Path]:
        names = {"spec": "spec.json", "outcome": "outcome.json", "progress": "progress.json"}
        return {key: self.store.work_dir / f"{job_id}.{suffix}" for key, suffix in names.items()}

    async def _save(self, record: JobRecord) -> None:
        await asyncio.to_thread(self._save_quietly, record)

    def _save_quietly(self, record: JobRecord) -> None:
        # A failed write leaves the record in memory; /api/v1/status then reports `error`.
        try:
            self.store.save(record)
        except STORE_ERRORS as exc:
            logger.error("could not persist job %s: %s", record.job_id, exc)

    # Records in memory and on disk

    def _remember(self, record: JobRecord) -> None:
        self.cached[record.job_id] = record
        self.cached.move_to_end(record.job_id)
        while len(self.cached) > CACHED_RECORDS:
            self.cached.popitem(last=False)

    def _running(self, job_id: str) -> bool:
        job = self.active
        return job is not None and job.record.job_id == job_id

    def _known(self, job_id: str) -> bool:
        if self._running(job_id):
            return True
        return job_id in self.cached or (not self._startup_error and self.store.exists(job_id))

    def status_answer(self, record: JobRecord) -> AgentJobStatus:
        """The record's status; `timestamp` is when it was read (the protocol's meaning).

        A running job's stage and fraction done are the task's latest report.
        """
        started = completed = None
        stage = fraction = None
        if record.result is not None:
            started, completed = record.result.started_at, record.result.completed_at
        else:
            job = self.active if self._running(record.job_id) else None
            started = (job.started_at if job else None) or record.accepted_at
            if job is not None and job.process is not None:
                report = read_progress(self._work_paths(record.job_id)["progress"])
                if report is not None:
                    stage, fraction = report.stage, report.progress
        return AgentJobStatus(
            job_id=record.job_id,
            status=record.status.status,
            message=record.status.message,
            timestamp=utcnow(),
            started_at=started,
            completed_at=completed,
            stage=stage,
            progress=fraction,
            error_type=outcomes.error_type(record),
            attempt=record.attempt,
        )

    def _newest_results(self) -> list[AvailableResult]:
        if self._startup_error:
            return []
        try:
            return self.store.newest_results(self.settings.available_results)
        except STORE_ERRORS as exc:
            logger.error("could not read the job index: %s", exc)
            return []
