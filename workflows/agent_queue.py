"""AgentQueueWorkflow: the one place that grants an agent to a job, first come first served."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.agent_queue import (
        ENQUEUE_SIGNAL,
        QUEUE_WORKFLOW_TYPE,
        RELEASE_SIGNAL,
        SNAPSHOT_QUERY,
        QueueActivities,
        QueueGrant,
        QueueHolder,
        QueueSnapshot,
        QueueState,
        grant_agent,
    )

# Job ids remembered after they finish, so a late or repeated enqueue is not run again.
FINISHED_MEMORY = 1000
GRANT_RETRY_PAUSE = timedelta(seconds=5)
# While no job waits, a closed holder keeps the agent from nobody: its check can wait longer.
IDLE_HOLDER_CHECK_FACTOR = 10


@workflow.defn(name=QUEUE_WORKFLOW_TYPE)
class AgentQueueWorkflow:
    @workflow.init
    def __init__(self, state: QueueState) -> None:
        self._state = state
        self._finished = set(state.finished)

    @workflow.run
    async def run(self, state: QueueState) -> None:
        # Beside the queue, not in its loop: a check timer started afresh at every grant would
        # cost two history events a job.
        watch = asyncio.create_task(self._watch_holder())
        while True:
            await workflow.wait_condition(lambda: self._can_grant() or self._history_is_long())
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                watch.cancel()
                workflow.continue_as_new(self._state)
            await self.process_next_job()

    @workflow.signal(name=ENQUEUE_SIGNAL)
    def enqueue(self, job_id: str) -> None:
        """Put a job at the end of the queue; a job already known is not queued twice."""
        s = self._state
        if job_id == s.holder or job_id in s.waiting or job_id in self._finished:
            return
        s.waiting.append(job_id)

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, job_id: str) -> None:
        """The job is done with the agent, or no longer wants it."""
        s = self._state
        if s.holder == job_id:
            s.holder = None
        elif job_id in s.waiting:
            s.waiting.remove(job_id)
        self._remember_finished(job_id)

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self) -> QueueSnapshot:
        s = self._state
        return QueueSnapshot(agent_id=s.agent_id, running=s.holder, queued=list(s.waiting))

    async def process_next_job(self) -> None:
        """Hand the agent to the job at the head of the queue."""
        job_id = self._state.waiting.pop(0)
        self._state.holder = job_id
        if not await self._signal_grant(job_id):
            workflow.logger.warning("cannot grant agent to %s: its workflow is gone", job_id)
            self.release(job_id)

    async def _watch_holder(self) -> None:
        """Check on the job holding the agent: every `holder_check` while jobs wait for it, ten
        times as seldom while none does, not at all while the agent is free."""
        while True:
            if self._state.holder is None and not self._state.waiting:
                await workflow.wait_condition(lambda: self._state.holder is not None)
            waiting = bool(self._state.waiting)
            interval = self._state.holder_check * (1 if waiting else IDLE_HOLDER_CHECK_FACTOR)
            try:
                # A first job to wait shortens the wait: the timer starts again.
                await workflow.wait_condition(
                    lambda was=waiting: bool(self._state.waiting) != was, timeout=interval
                )
            except TimeoutError:
                await self._check_holder()

    async def _check_holder(self) -> None:
        """Free the agent if the holder's workflow closed without releasing it (terminated)."""
        holder = self._state.holder
        if holder is None:
            return
        try:
            gone = await workflow.execute_local_activity_method(
                QueueActivities.retire_if_closed,
                QueueHolder(job_id=holder),
                start_to_close_timeout=timedelta(seconds=30),
            )
        except ActivityError as err:  # checked again at the next interval
            workflow.logger.warning("cannot check on %s, the agent's holder: %s", holder, err)
            return
        if gone and self._state.holder == holder:
            workflow.logger.warning("%s closed without releasing the agent: freed", holder)
            self.release(holder)

    async def _signal_grant(self, job_id: str) -> bool:
        """Signal the grant, trying again after a pause until Temporal takes it."""
        while True:
            try:
                return await workflow.execute_local_activity(
                    grant_agent,
                    QueueGrant(job_id=job_id),
                    start_to_close_timeout=timedelta(seconds=30),
                )
            except ActivityError as err:
                workflow.logger.warning("granting agent to %s failed, retrying: %s", job_id, err)
                await workflow.sleep(GRANT_RETRY_PAUSE)

    def _can_grant(self) -> bool:
        return self._state.holder is None and bool(self._state.waiting)

    def _history_is_long(self) -> bool:
        return workflow.info().get_current_history_length() >= self._state.continue_as_new_events

    def _remember_finished(self, job_id: str) -> None:
        s = self._state
        if job_id in self._finished:
            return
        self._finished.add(job_id)
        s.finished.append(job_id)
        if len(s.finished) > FINISHED_MEMORY:
            self._finished.discard(s.finished.pop(0))
