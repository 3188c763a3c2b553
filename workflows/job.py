"""JobWorkflow: the story of one job, from the agent's queue to its results."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.agent_calls import AgentActivities
    from activities.dispatch import RECORD_ONCE_TIMEOUT_S, SENT_MESSAGE, DispatchActivities
    from activities.errors import (
        AGENT_BUSY,
        AGENT_STATUS_FAILED,
        AGENT_UNKNOWN_JOB,
        NON_RETRYABLE,
    )
    from activities.queue import join_agent_queue, release_agent
    from activities.storage_writes import StorageActivities
    from activities.types import (
        AgentCall,
        ExecuteCall,
        JobCall,
        JobEnd,
        QueueEntry,
        QueueRelease,
        ResultsTransfer,
        StatusRecord,
    )
    from common.models import AgentStatusEnum, JobInfo, JobStatus, JobStatusEnum
    from common.temporal import JOB_STATUS_KEY
    from workflows.types import JobInput, JobProgress, queue_workflow_id

A = TypeVar("A")
R = TypeVar("R")

# A durable step (storage write, joining the queue): tries within one local activity, then a
# pause on a durable timer before the next activity.
_DURABLE_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=5), non_retryable_error_types=NON_RETRYABLE
    ),
}
DURABLE_STEP_PAUSE = timedelta(seconds=5)

# Recorded even when nothing changed, so the stored timestamp shows the job is watched.
RECORD_REFRESH = timedelta(seconds=60)


class JobEndedElsewhere(Exception):
    """The stored record says the job already ended (it was abandoned at submission)."""


class AgentCallFailed(Exception):
    """An agent call failed for good; the message names the call and the cause."""

    def __init__(self, message: str, kind: str | None) -> None:
        super().__init__(message)
        self.kind = kind


@workflow.defn
class JobWorkflow:
    @workflow.init
    def __init__(self, inp: JobInput) -> None:
        self._inp = inp
        self._job = inp.job
        self._granted = inp.progress is not None
        self._poll_requested = False
        self._notified: JobStatus | None = None
        self._progress = inp.progress
        self._sent = inp.progress is not None
        self._in_queue = inp.progress is not None
        self._ended = False

    @workflow.run
    async def run(self, inp: JobInput) -> JobStatus:
        try:
            if self._progress is None:
                if inp.agent_status is AgentStatusEnum.UNAVAILABLE:
                    return await self._finish(JobStatusEnum.FAILED, "agent unavailable")
                await self._join_queue()
                await workflow.wait_condition(lambda: self._granted)
                failed = await self._dispatch()
                if failed is not None:
                    return await self._finish(JobStatusEnum.FAILED, failed)
            return await self._watch()
        except asyncio.CancelledError:
            return await self._finish(JobStatusEnum.CANCELLED, "cancelled by request", stop=True)
        except JobEndedElsewhere:
            await self._release()
            return self._job.status

    @workflow.update
    async def submitted(self) -> JobStatus:
        """Answers once the job waits in its agent's queue, or has already ended."""
        await workflow.wait_condition(lambda: self._in_queue or self._ended)
        return self._job.status

    @workflow.signal
    def grant(self) -> None:
        """The agent's queue hands this job the agent."""
        self._granted = True

    @workflow.signal
    def poll_now(self, reported: JobStatus | None = None) -> None:
        """The agent says the job ended: poll at once, or take its final status as the poll."""
        self._poll_requested = True
        if reported is not None and reported.status.is_terminal:
            self._notified = reported

    @workflow.query
    def status(self) -> JobStatus:
        return self._job.status

    # The steps of the story

    async def _join_queue(self) -> None:
        entry = QueueEntry(
            agent_id=self._job.agent_id,
            job_id=self._job.job_id,
            queue_continue_as_new_events=self._inp.policy.queue_continue_as_new_events,
            queue_holder_check=self._inp.policy.queue_holder_check,
        )
        await self._until_done(
            "joining the agent's queue",
            lambda: workflow.execute_local_activity(
                join_agent_queue,
                entry,
                **_DURABLE_STEP,  # type: ignore[arg-type]
            ),
        )
        self._in_queue = True

    async def _dispatch(self) -> str | None:
        """Send the job to its agent once the agent is idle; a failure message otherwise."""
        recheck = self._inp.policy.busy_recheck_initial
        while True:
            try:
                if self._inp.revision >= 3:
                    agent = await self._send()
                else:
                    agent = await self._send_in_steps()
            except AgentCallFailed as err:
                return str(err)
            if agent is None:
                return None
            if agent in (AgentStatusEnum.ERROR, AgentStatusEnum.UNAVAILABLE):
                return f"agent reported status {agent.value}"
            await self._record(JobStatusEnum.QUEUED, "agent busy with other work")
            await workflow.sleep(recheck)
            recheck = min(recheck * 2, self._inp.policy.busy_recheck_maximum)

    async def _send(self) -> AgentStatusEnum | None:
        """Status, job and ASSIGNED record in one step; None once sent, else the agent's status."""
        # Set first: a cancel while the job may be on its way must stop it on the agent.
        self._sent = True
        try:
            # Two agent calls and one try at the ASSIGNED record per try.
            per_try = 2 * self._inp.policy.agent_call_timeout + RECORD_ONCE_TIMEOUT_S
            dispatch = await self._call(
                DispatchActivities.dispatch, self._execute_call(), per_try=per_try
            )
        except AgentCallFailed as err:
            # The agent never answered whether it was idle: there are no results to fetch.
            self._sent = err.kind != AGENT_STATUS_FAILED
            raise
        if dispatch.sent is None:
            self._sent = False
            return dispatch.agent
        if dispatch.stored is None:
            await self._record(dispatch.sent.status, dispatch.sent.message)
        else:
            self._take_record(dispatch.stored, dispatch.sent.status)
        self._track_progress()
        return None

    async def _send_in_steps(self) -> AgentStatusEnum | None:
        """Revisions 1 and 2: the status, the job and its record each in their own step."""
        agent = await self._call(
            AgentActivities.get_agent_status, AgentCall(agent_url=self._inp.agent_url)
        )
        if agent.status is not AgentStatusEnum.IDLE:
            return agent.status
        self._sent = True
        try:
            await self._call(AgentActivities.execute_experiment, self._execute_call())
        except AgentCallFailed as err:
            if err.kind != AGENT_BUSY:
                raise
            return AgentStatusEnum.ACTIVE
        await self._record(JobStatusEnum.ASSIGNED, SENT_MESSAGE)
        self._track_progress()
        return None

    def _track_progress(self) -> None:
        now = workflow.now()
        self._progress = JobProgress(
            dispatched_at=now,
            deadline=now + self._inp.timeout,
            last_recorded=self._job.status,
            last_recorded_at=now,
        )

    async def _watch(self) -> JobStatus:
        """Poll the agent on a durable timer until the job ends or its deadline passes."""
        assert self._progress is not None
        policy = self._inp.policy
        for _ in range(policy.continue_as_new_polls):
            remaining = (self._progress.deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return await self._finish(
                    JobStatusEnum.TIMEOUT,
                    f"job exceeded its deadline of {self._inp.timeout.total_seconds():g} s",
                    stop=True,
                )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._poll_requested, timeout=min(policy.polling_interval, remaining)
                )
            self._poll_requested = False
            # An authenticated notification of the end is the agent's own answer: no need to ask.
            reported, self._notified = self._notified, None
            if reported is None:
                try:
                    reported = await self._call(AgentActivities.get_job_status, self._job_call())
                except AgentCallFailed as err:
                    if err.kind == AGENT_UNKNOWN_JOB:
                        return await self._finish(
                            JobStatusEnum.FAILED, f"agent lost the job: {err}"
                        )
                    return await self._finish(JobStatusEnum.FAILED, str(err))
            if reported.status.is_terminal:
                return await self._finish(reported.status, reported.message, at=reported.timestamp)
            if reported.status is not JobStatusEnum.QUEUED:
                await self._refresh(reported)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._inp.model_copy(update={"progress": self._progress}))

    async def _refresh(self, reported: JobStatus) -> None:
        assert self._progress is not None
        last = self._job.status
        changed = (reported.status, reported.message) != (last.status, last.message)
        stale = workflow.now() - self._progress.last_recorded_at >= RECORD_REFRESH
        if changed or stale:
            await self._record(reported.status, reported.message, at=reported.timestamp)
            self._progress.last_recorded_at = workflow.now()

    async def _finish(
        self,
        status: JobStatusEnum,
        message: str,
        *,
        at: datetime | None = None,
        stop: bool = False,
    ) -> JobStatus:
        """Stop the job on its agent if asked, keep its results, record the end, free the agent."""
        if stop and self._sent:
            try:
                await self._call(AgentActivities.cancel_job, self._job_call())
            except AgentCallFailed as err:
                workflow.logger.warning("job %s: %s", self._job.job_id, err)
        if self._inp.revision >= 2:
            return await self._end(
                JobStatus(status=status, message=message, timestamp=at or workflow.now())
            )
        if self._sent:
            await self._save_results()
        await self._record(status, message, at=at)
        self._ended = True
        await self._release()
        return self._job.status

    async def _end(self, final: JobStatus) -> JobStatus:
        """The last steps in one local activity: results, final status, the agent freed."""
        end = JobEnd(
            job_id=self._job.job_id,
            experiment_id=self._job.experiment_id,
            agent_id=self._job.agent_id,
            agent_url=self._inp.agent_url if self._sent else None,
            status=final,
            agent_attempts=self._inp.policy.retry_maximum_attempts,
            release=self._in_queue,
        )
        retry = self._retry_policy()
        retry.maximum_attempts = 0  # the activity bounds the agent's tries itself
        previous = self._job.status.status
        # Local: the results themselves never enter history. Repeated until storage takes them.
        self._job = await self._until_done(
            "ending the job",
            lambda: workflow.execute_local_activity_method(
                StorageActivities.end_job,
                end,
                start_to_close_timeout=timedelta(seconds=60 + self._inp.policy.agent_call_timeout),
                retry_policy=retry,
            ),
        )
        self._ended = True
        self._publish_status(previous)
        return self._job.status

    async def _save_results(self) -> None:
        transfer = ResultsTransfer(
            agent_url=self._inp.agent_url,
            job_id=self._job.job_id,
            experiment_id=self._job.experiment_id,
            agent_attempts=self._inp.policy.retry_maximum_attempts,
        )
        retry = self._retry_policy()
        retry.maximum_attempts = 0  # the activity bounds the agent's tries itself
        try:
            # Local: no task-queue round trip, and the results themselves never enter history.
            # Repeated until storage takes them; only the agent's own failure gives up.
            await self._until_done(
                "saving the results",
                lambda: workflow.execute_local_activity_method(
                    StorageActivities.transfer_results,
                    transfer,
                    start_to_close_timeout=timedelta(
                        seconds=60 + self._inp.policy.agent_call_timeout
                    ),
                    retry_policy=retry,
                ),
            )
        except (ActivityError, ApplicationError) as err:
            workflow.logger.error(
                "job %s: results could not be retrieved: %s", self._job.job_id, _cause(err)
            )

    async def _release(self) -> None:
        if not self._in_queue:
            return
        if self._inp.revision >= 2:
            release = QueueRelease(agent_id=self._job.agent_id, job_id=self._job.job_id)
            await self._until_done(
                "releasing the agent",
                lambda: workflow.execute_local_activity(
                    release_agent,
                    release,
                    **_DURABLE_STEP,  # type: ignore[arg-type]
                ),
            )
            return
        queue = workflow.get_external_workflow_handle(queue_workflow_id(self._job.agent_id))
        try:
            await queue.signal("release", self._job.job_id)
        except Exception as err:  # no queue means nothing to release
            workflow.logger.warning("job %s: release failed: %s", self._job.job_id, err)

    async def _record(
        self, status: JobStatusEnum, message: str, *, at: datetime | None = None
    ) -> None:
        new = JobStatus(status=status, message=message, timestamp=at or workflow.now())
        current = self._job.status
        if (new.status, new.message) == (current.status, current.message):
            return
        record = StatusRecord(job_id=self._job.job_id, status=new)
        stored = await self._until_done(
            "recording its status",
            lambda: workflow.execute_local_activity_method(
                StorageActivities.record_job_status, record, **_DURABLE_STEP
            ),
        )
        self._take_record(stored, status)

    def _take_record(self, stored: JobInfo, requested: JobStatusEnum) -> None:
        """Adopt what storage holds after a write; a job it says has ended stops here."""
        before = self._job.status.status
        self._job = stored
        if stored.status.status.is_terminal and not requested.is_terminal:
            raise JobEndedElsewhere(stored.status.message)
        self._publish_status(before)

    def _publish_status(self, before: JobStatusEnum) -> None:
        """Keep the JobStatus search attribute in step with the stored status."""
        if self._job.status.status is not before:
            workflow.upsert_search_attributes([JOB_STATUS_KEY.value_set(self._job.status.status)])

    # Plumbing

    async def _until_done(self, what: str, step: Callable[[], Awaitable[R]]) -> R:
        """Repeat a step that must not be lost (storage, the queue) until it succeeds.

        A local activity's timeout spans its in-worker retries, so a long outage ends it;
        a durable pause and a new try keep the job going instead of failing it.
        """
        while True:
            try:
                return await step()
            except (ActivityError, ApplicationError) as err:
                if is_cancelled_exception(err):
                    raise asyncio.CancelledError from err
                failure = _application_failure(err)
                if failure is not None and failure.non_retryable:
                    raise
                workflow.logger.warning(
                    "job %s: %s failed, trying again: %s", self._job.job_id, what, _cause(err)
                )
                await workflow.sleep(DURABLE_STEP_PAUSE)

    async def _call(
        self,
        activity: Callable[[Any, A], Awaitable[R]],
        arg: A,
        *,
        per_try: float | None = None,
    ) -> R:
        """Run agent calls as a local activity retried by the job's policy; `per_try` bounds
        one try in seconds (one agent call's timeout unless given)."""
        p = self._inp.policy
        # Each call is bounded by the agent client itself. The SDK's start-to-close of a local
        # activity spans its in-worker retries, so it must fit them all; otherwise the job
        # would fail with a bare timeout instead of the last try's error.
        one_try = (per_try or p.agent_call_timeout) + p.retry_maximum_interval
        budget = timedelta(seconds=p.retry_maximum_attempts * one_try + 5)
        try:
            return await workflow.execute_local_activity_method(
                activity,
                arg,
                start_to_close_timeout=budget,
                schedule_to_close_timeout=budget,
                retry_policy=self._retry_policy(),
            )
        except (ActivityError, ApplicationError) as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError from err
            failure = _application_failure(err)
            if failure is None:
                name = getattr(activity, "__name__", "agent call")
                message = f"{name} failed: the agent did not answer in time ({err})"
                raise AgentCallFailed(message, None) from err
            raise AgentCallFailed(failure.message, failure.type) from err

    def _execute_call(self) -> ExecuteCall:
        return ExecuteCall(
            agent_url=self._inp.agent_url, job_id=self._job.job_id, spec=self._inp.spec
        )

    def _job_call(self) -> JobCall:
        return JobCall(agent_url=self._inp.agent_url, job_id=self._job.job_id)

    def _retry_policy(self) -> RetryPolicy:
        p = self._inp.policy
        return RetryPolicy(
            initial_interval=timedelta(seconds=p.retry_initial_interval),
            maximum_interval=timedelta(seconds=p.retry_maximum_interval),
            maximum_attempts=p.retry_maximum_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        )


def _application_failure(err: BaseException) -> ApplicationError | None:
    """The ApplicationError behind an activity failure (local ones may arrive unwrapped)."""
    while err is not None and not isinstance(err, ApplicationError):
        err = err.cause if isinstance(err, ActivityError) else None  # type: ignore[assignment]
    return err


def _cause(err: BaseException) -> str:
    failure = _application_failure(err)
    return failure.message if failure is not None else str(err)
