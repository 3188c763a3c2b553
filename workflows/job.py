"""JobWorkflow: the story of one job, in the request's words.

A job joins its agent's queue; once granted the agent, `process_job` sends it when the agent is
idle; `process_job_status` polls it on a durable timer until it ends or its deadline passes;
`process_job_results` fetches and stores its results with its final status and frees the agent
for the queue's `process_next_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.agent_queue import (
        GRANT_SIGNAL,
        QueueActivities,
        QueueEntry,
        QueueRelease,
        release_agent,
    )
    from activities.errors import AGENT_STATUS_FAILED, AGENT_UNKNOWN_JOB, JOB_ID_TAKEN
    from activities.job import (
        RECORD_ONCE_TIMEOUT_S,
        SENT_MESSAGE,
        ExecuteCall,
        JobActivities,
        JobCall,
        JobEnd,
    )
    from common.models import (
        AGENT_RESTARTED,
        AgentStatusEnum,
        JobInfo,
        JobStatus,
        JobStatusEnum,
    )
    from workflows.job_records import JobRecords
    from workflows.job_types import (
        JobEndedElsewhere,
        JobIdTaken,
        JobInput,
        JobProgress,
        Phase,
        announced_late,
        lost,
        outcome,
        poll_interval,
    )
    from workflows.steps import (
        DURABLE_STEP,
        AgentCallFailed,
        agent_retry_policy,
        application_failure,
        call_agent,
        until_done,
    )


@workflow.defn
class JobWorkflow(JobRecords):
    @workflow.init
    def __init__(self, inp: JobInput) -> None:
        self._inp = inp
        self._policy = inp.policy
        self._job = inp.job
        self._progress = inp.progress
        self._phase = Phase.SENT if inp.progress is not None else Phase.JOINING
        self._poll_requested = False
        self._notified: JobStatus | None = None
        self._id_taken = False
        self._attempt = inp.attempt
        self._notifies = inp.agent_notifies

    @workflow.run
    async def run(self, inp: JobInput) -> JobStatus:
        """The job's story; its workflow then ends as the job did (see `_outcome`)."""
        try:
            if self._phase is Phase.JOINING:
                if inp.agent_status is AgentStatusEnum.UNAVAILABLE:
                    return outcome(await self._finish(JobStatusEnum.FAILED, "agent unavailable"))
                await self._join_queue()
                await workflow.wait_condition(lambda: self._phase >= Phase.GRANTED)
            final = None
            while final is None:  # once more when the agent lost the job and it is sent again
                if self._phase < Phase.SENT:
                    failed = await self.process_job()
                    if failed is not None:
                        return outcome(await self._finish(JobStatusEnum.FAILED, failed))
                final = await self.process_job_status()
            return outcome(final)
        except asyncio.CancelledError:
            await self._finish(JobStatusEnum.CANCELLED, "cancelled by request", stop=True)
            raise
        except JobEndedElsewhere:
            await self._release()
            return outcome(self._job.status)
        except JobIdTaken as err:
            raise ApplicationError(str(err), type=JOB_ID_TAKEN, non_retryable=True) from err

    @workflow.update
    async def submitted(self) -> JobInfo:
        """The job as recorded once it waits in its agent's queue, or has already ended."""
        await workflow.wait_condition(lambda: self._phase >= Phase.WAITING or self._id_taken)
        if self._id_taken:
            raise ApplicationError("the job id holds another job", type=JOB_ID_TAKEN)
        return self._job

    @workflow.signal(name=GRANT_SIGNAL)
    def grant(self) -> None:
        """The agent's queue hands this job the agent (perhaps before its join has returned)."""
        self._phase = max(self._phase, Phase.GRANTED)

    @workflow.signal
    def poll_now(self, reported: JobStatus | None = None) -> None:
        """The agent says the job ended: poll at once, or confirm its final status by results."""
        if self._phase is not Phase.SENT:  # only a job on its agent can end there
            return
        self._poll_requested = True
        if reported is not None and reported.status.is_terminal:
            self._notified = reported

    @workflow.query
    def status(self) -> JobStatus:
        return self._job.status

    # The request's steps

    async def process_job(self) -> str | None:
        """Send the job to its agent once the agent is idle; why it failed, if it did."""
        recheck = self._policy.busy_agent_recheck_initial
        while True:
            try:
                agent = await self._send()
            except AgentCallFailed as err:
                return str(err)
            if agent is None:
                return None
            if agent in (AgentStatusEnum.ERROR, AgentStatusEnum.UNAVAILABLE):
                return f"agent reported status {agent.value}"
            # Busy with work from elsewhere: keep the agent, ask again on a backing-off timer.
            await self._record(self._status(JobStatusEnum.QUEUED, "agent busy with other work"))
            await workflow.sleep(recheck)
            recheck = min(recheck * 2, self._policy.busy_agent_recheck_maximum)

    async def process_job_status(self) -> JobStatus | None:
        """Poll the agent on a durable timer until the job ends or its deadline passes; None
        when the agent lost the job (it restarted) and it is to be sent again."""
        assert self._progress is not None
        for _ in range(self._policy.job_continue_as_new_polls):
            remaining = (self._progress.deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                deadline = self._inp.timeout.total_seconds()
                message = f"job exceeded its deadline of {deadline:g} s"
                return await self._finish(JobStatusEnum.TIMEOUT, message, stop=True)
            interval = min(poll_interval(self._policy, self._notifies), remaining)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._poll_requested, timeout=interval)
            self._poll_requested = False
            # A notified end saves the status call; the agent's results must confirm it.
            reported, self._notified = self._notified, None
            if reported is not None and not lost(reported):
                ended = await self.process_job_results(
                    reported.model_copy(update={"attempt": self._attempt}),
                    confirm=True,
                    agent_notifies=True if not self._notifies else None,
                )
                if ended is not None:
                    return ended
                workflow.logger.warning(
                    "job %s: a notified end the agent's results do not confirm", self._job.job_id
                )
            reported = await self._ask_agent()
            if lost(reported) and self._attempt <= self._policy.job_agent_lost_retries:
                await self._send_again(reported)
                return None
            if reported.status.is_terminal:
                return await self._finish(
                    reported.status,
                    reported.message,
                    at=reported.timestamp,
                    error_type=reported.error_type,
                    agent_notifies=False if self._missed(reported) else None,
                )
            if reported.status is not JobStatusEnum.QUEUED:
                await self._refresh(reported)
        # Bounded history: the job goes on in a new run, polling where it left off.
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._inp.model_copy(
                update={
                    "progress": self._progress,
                    "attempt": self._attempt,
                    "agent_notifies": self._notifies,
                }
            )
        )

    async def process_job_results(
        self, final: JobStatus, confirm: bool = False, agent_notifies: bool | None = None
    ) -> JobStatus | None:
        """Fetch the results, store them with the final status, free the agent: one step.

        With `confirm`, the end stands only if the results say the job ended (else None).
        """
        end = JobEnd(
            job=self._job,
            agent_url=self._inp.agent_url if self._phase >= Phase.SENDING else None,
            status=final,
            agent_attempts=self._policy.agent_retry_maximum_attempts,
            release=self._phase >= Phase.WAITING,
            confirm=confirm,
            agent_notifies=agent_notifies,
            fetch_log=self._inp.agent_keeps_logs,
        )
        retry = agent_retry_policy(self._policy)
        retry.maximum_attempts = 0  # the activity bounds the agent's tries itself
        timeout = timedelta(seconds=60 + self._policy.agent_call_timeout)
        previous = self._job.status.status
        # Local: the results never enter history. Repeated until storage takes them.
        stored = await until_done(
            f"job {self._job.job_id}: ending it",
            lambda: workflow.execute_local_activity_method(
                JobActivities.end_job, end, start_to_close_timeout=timeout, retry_policy=retry
            ),
        )
        if stored is None:
            return None
        self._job = stored
        self._phase = Phase.ENDED
        self._publish_status(previous)
        return self._job.status

    # What the steps are made of

    async def _join_queue(self) -> None:
        entry = QueueEntry(
            job=self._job,
            queue_continue_as_new_events=self._policy.queue_continue_as_new_events,
            queue_holder_check=self._policy.queue_holder_check_interval,
        )
        try:
            stored = await until_done(
                f"job {self._job.job_id}: joining its agent's queue",
                lambda: workflow.execute_local_activity_method(
                    QueueActivities.join_agent_queue, entry, **DURABLE_STEP
                ),
            )
        except (ActivityError, ApplicationError) as err:
            failure = application_failure(err)
            if failure is None or failure.type != JOB_ID_TAKEN:
                raise
            self._id_taken = True
            raise JobIdTaken(failure.message) from err
        # The job's record is made here, with its place in the queue: a submission given up on
        # before (recorded FAILED) ends now.
        self._take_record(stored, JobStatusEnum.QUEUED)
        self._phase = max(self._phase, Phase.WAITING)

    async def _send(self) -> AgentStatusEnum | None:
        """Status, job and ASSIGNED record in one step; None once sent, else the agent's status."""
        # Two agent calls and one try at the ASSIGNED record per try.
        per_try = 2 * self._policy.agent_call_timeout + RECORD_ONCE_TIMEOUT_S
        while True:
            # First: a cancel while the job may be on its way must stop it on the agent.
            self._phase = Phase.SENDING
            try:
                dispatch = await call_agent(
                    self._policy, JobActivities.dispatch, self._execute_call(), per_try=per_try
                )
            except AgentCallFailed as err:
                if err.kind == AGENT_STATUS_FAILED:  # never asked if it was idle: nothing sent
                    self._phase = Phase.GRANTED
                raise
            if not dispatch.unrecorded:
                break
            # Storage did not take the record that must precede the job: write it durably,
            # then ask the agent again (it may have become busy meanwhile).
            self._phase = Phase.GRANTED
            await self._record(self._status(JobStatusEnum.ASSIGNED, SENT_MESSAGE))
        if dispatch.stored is not None:  # may say the job ended before it was sent
            self._take_record(dispatch.stored, JobStatusEnum.ASSIGNED)
        if dispatch.sent is None:
            self._phase = Phase.GRANTED
            return dispatch.agent
        # Only an agent told where to report can be trusted to report.
        self._notifies = self._notifies and dispatch.callbacks
        now = workflow.now()
        self._progress = JobProgress(dispatched_at=now, deadline=now + self._inp.timeout)
        self._phase = Phase.SENT
        return None

    async def _refresh(self, reported: JobStatus) -> None:
        """Record what the agent says of a running job when it changed (stage, progress too):
        a poll that finds nothing new writes nothing."""
        shown = {"status", "message", "stage", "progress"}
        if reported.model_dump(include=shown) == self._job.status.model_dump(include=shown):
            return
        await self._record(reported.model_copy(update={"attempt": self._attempt}))
        if reported.stage:
            done = f" ({reported.progress:.0%})" if reported.progress is not None else ""
            workflow.set_current_details(f"{reported.stage}{done}")

    async def _ask_agent(self) -> JobStatus:
        """The agent's answer for the job; a failed call is the job's failure (a job the agent
        does not know any more, it lost)."""
        try:
            return await call_agent(self._policy, JobActivities.get_job_status, self._job_call())
        except AgentCallFailed as err:
            unknown = err.kind == AGENT_UNKNOWN_JOB
            message = f"agent lost the job: {err}" if unknown else str(err)
            error_type = AGENT_RESTARTED if unknown else None
            return JobStatus(status=JobStatusEnum.FAILED, message=message, error_type=error_type)

    def _missed(self, reported: JobStatus) -> bool:
        """A poll found an end its agent, trusted to report it, did not announce in time."""
        if self._notifies and announced_late(reported, workflow.now()):
            workflow.logger.warning(
                "job %s: a poll found its end unannounced: its agent is polled as usual again",
                self._job.job_id,
            )
            return True
        return False

    async def _send_again(self, lost: JobStatus) -> None:
        """The agent came back without the job: send it again, still holding the agent, so no
        other job overtakes it."""
        self._attempt += 1
        attempts = self._policy.job_agent_lost_retries + 1
        message = f"{lost.message}; sending it again (attempt {self._attempt} of {attempts})"
        await self._record(self._status(JobStatusEnum.ASSIGNED, message))
        self._phase = Phase.GRANTED

    async def _finish(
        self,
        status: JobStatusEnum,
        message: str,
        *,
        at: datetime | None = None,
        stop: bool = False,
        error_type: str | None = None,
        agent_notifies: bool | None = None,
    ) -> JobStatus:
        """Stop the job on its agent if asked, then its results and the end."""
        if stop and self._phase >= Phase.SENDING:
            try:
                await call_agent(self._policy, JobActivities.cancel_job, self._job_call())
            except AgentCallFailed as err:
                workflow.logger.warning("job %s: %s", self._job.job_id, err)
        final = self._status(status, message, at=at, error_type=error_type)
        ended = await self.process_job_results(final, agent_notifies=agent_notifies)
        assert ended is not None  # only a notified end waits for confirmation
        return ended

    async def _release(self) -> None:
        if self._phase < Phase.WAITING:
            return
        release = QueueRelease(agent_id=self._job.agent_id, job_id=self._job.job_id)
        await until_done(
            f"job {self._job.job_id}: releasing its agent",
            lambda: workflow.execute_local_activity(release_agent, release, **DURABLE_STEP),
        )

    def _execute_call(self) -> ExecuteCall:
        return ExecuteCall(
            agent_url=self._inp.agent_url,
            job_id=self._job.job_id,
            spec=self._inp.spec,
            attempt=self._attempt,
        )

    def _job_call(self) -> JobCall:
        return JobCall(agent_url=self._inp.agent_url, job_id=self._job.job_id)
