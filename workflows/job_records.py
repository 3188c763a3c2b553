"""How a job's workflow keeps its stored record: written by activity, adopted as stored, and
mirrored in the RuckusJobStatus search attribute. Workflow code: no I/O here."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.job import JobActivities, StatusRecord
    from common.models import JobInfo, JobStatus, JobStatusEnum
    from common.temporal import JOB_STATUS_KEY
    from workflows.job_types import JobEndedElsewhere, Phase
    from workflows.steps import DURABLE_STEP, until_done


class JobRecords:
    """The job's record as storage last said it (`_job`), and how it changes."""

    _job: JobInfo
    _attempt: int
    _phase: Phase

    def _status(
        self,
        status: JobStatusEnum,
        message: str,
        *,
        at: datetime | None = None,
        error_type: str | None = None,
    ) -> JobStatus:
        """A status of this job, stamped with its attempt once it has been sent."""
        attempt = self._attempt if self._phase >= Phase.SENDING else None
        return JobStatus(
            status=status,
            message=message,
            timestamp=at or workflow.now(),
            error_type=error_type,
            attempt=attempt,
        )

    async def _record(self, new: JobStatus) -> None:
        if new.model_dump(exclude={"timestamp"}) == self._job.status.model_dump(
            exclude={"timestamp"}
        ):
            return
        record = StatusRecord(job_id=self._job.job_id, status=new)
        stored = await until_done(
            f"job {self._job.job_id}: recording its status",
            lambda: workflow.execute_local_activity_method(
                JobActivities.record_job_status, record, **DURABLE_STEP
            ),
        )
        self._take_record(stored, new.status)

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
