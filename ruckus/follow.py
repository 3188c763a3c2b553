"""Following a job in the terminal: a live progress line (status, stage, elapsed time), its
log lines on request, and at the end its results or its error and what to run next."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from common.models import JobInfo, JobLog, JobStatusEnum
from ruckus.http_client import RuckusAPIError, RuckusClient
from ruckus.tables import show_result


def follow_job(
    client: RuckusClient, job_id: str, console: Console, *, logs: bool = False
) -> JobInfo:
    """Show the job live until it ends, and its results (or error); the job as it ended.

    Ctrl-C stops following, not the job: it says so, and how to follow again.
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(f"{job_id}: submitted", total=None)
    job: JobInfo | None = None
    try:
        with progress:
            for event, data in _events(client, job_id):
                if event == "log" and logs:
                    for line in JobLog.model_validate_json(data).text.splitlines():
                        progress.console.print(escape(line), highlight=False, soft_wrap=True)
                elif event in ("status", "end"):
                    job = JobInfo.model_validate_json(data)
                    status = job.status
                    progress.update(
                        task,
                        description=escape(_describe(job)),
                        total=1.0 if status.progress is not None else None,
                        completed=status.progress or 0.0,
                    )
                    if event == "status":
                        progress.console.print(escape(_line(job)), soft_wrap=True)
    except KeyboardInterrupt:
        console.print(
            f"stopped following {job_id}; the job goes on. Follow it again with "
            f"`ruckus jobs watch {job_id}`, or stop it with `ruckus jobs cancel {job_id}`.",
            soft_wrap=True,
        )
        raise
    job = job or client.get_job(job_id)
    _conclude(client, job, console)
    return job


def _events(client: RuckusClient, job_id: str) -> Iterator[tuple[str, str]]:
    """The job's events to its end, reconnecting if the stream breaks before then."""
    while True:
        try:
            for event, data in client.job_events(job_id):
                yield event, data
                if event == "end":
                    return
        except RuckusAPIError as err:
            if err.status_code is not None:  # the server answered: it means it
                raise
        if client.get_job(job_id).status.status.is_terminal:
            yield "end", client.get_job(job_id).model_dump_json()
            return


def _describe(job: JobInfo) -> str:
    status = job.status
    words = [f"{job.job_id}: {status.status.value}"]
    if status.stage:
        words.append(status.stage)
    if status.attempt and status.attempt > 1:
        words.append(f"attempt {status.attempt}")
    return " · ".join(words)


def _line(job: JobInfo) -> str:
    status = job.status
    at = status.timestamp.astimezone().strftime("%H:%M:%S") if status.timestamp else ""
    stage = f" [{status.stage}]" if status.stage else ""
    return f"{at} {status.status.value:<10} {status.message}{stage}"


def _conclude(client: RuckusClient, job: JobInfo, console: Console) -> None:
    """The end: results of a completed job, the error of another, and what to run next."""
    status = job.status
    if status.status is JobStatusEnum.COMPLETED:
        try:
            show_result(console, client.get_result(job.job_id))
        except RuckusAPIError as err:
            console.print(f"[yellow]results not readable:[/] {escape(str(err))}")
        console.print(
            f"next: `ruckus results show {job.job_id} --json` for every figure, or "
            f"`ruckus jobs logs {job.job_id}` for its log",
            soft_wrap=True,
        )
        return
    console.print(
        f"[red]{status.status.value}:[/] {escape(status.message)}"
        + (f" ({status.error_type})" if status.error_type else ""),
        soft_wrap=True,
    )
    console.print(
        f"next: `ruckus jobs logs {job.job_id}` for its log, `ruckus results show {job.job_id}` "
        "for what it left",
        soft_wrap=True,
    )
