"""One line per job event for the `ruckus dev` terminal: submitted, started, ended."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from common.models import JobInfo, JobStatusEnum
from ruckus.http_client import RuckusAPIError, RuckusClient

# The newest jobs looked at each time: more than a person submits between two looks.
WINDOW = 200
STARTED = (JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)


class JobFeed:
    """Prints what changed in the newest jobs since the last look."""

    def __init__(self, client: RuckusClient) -> None:
        self._client = client
        self._seen: dict[str, JobStatusEnum] | None = None

    def look(self, console: Console) -> None:
        try:
            grouped = self._client.list_jobs(limit=WINDOW)["jobs"]
        except RuckusAPIError:
            return  # the API is restarting or busy: the next look catches up
        jobs = sorted(
            (JobInfo.model_validate(j) for js in grouped.values() for j in js),
            key=lambda j: j.created_time,
        )
        first = self._seen is None
        seen = self._seen or {}
        for job in jobs:
            before, now = seen.get(job.job_id), job.status.status
            seen[job.job_id] = now
            if first or before is now:
                continue
            line = _line(job, before)
            if line:
                console.print(line, soft_wrap=True, highlight=False)
        self._seen = seen


def _line(job: JobInfo, before: JobStatusEnum | None) -> str | None:
    now = job.status.status
    where = f"{escape(job.experiment_id)} on {escape(job.agent_id)}"
    if now.is_terminal:
        colour = "green" if now is JobStatusEnum.COMPLETED else "red"
        detail = "" if now is JobStatusEnum.COMPLETED else f": {escape(job.status.message)}"
        return f"job {job.job_id} [{colour}]{now.value}[/]{detail} ({where})"
    if before is None:
        return f"job {job.job_id} submitted: {where}"
    if now in STARTED and before not in STARTED:
        return f"job {job.job_id} started: {where}"
    return None
