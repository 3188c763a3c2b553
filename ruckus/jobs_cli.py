"""Client commands for jobs and their results: submit, follow, list, show, cancel, logs."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console

from common.models import JobStatusEnum
from ruckus.client_cli import (
    JOB_NOT_COMPLETED,
    JsonOption,
    KeyOption,
    LogsOption,
    ServerOption,
    WideOption,
    _client,
    _fail,
    _newest_first,
    _print_json,
    ask,
    console,
)
from ruckus.follow import follow_job
from ruckus.http_client import DEFAULT_SERVER_URL, RuckusAPIError, RuckusClient
from ruckus.tables import Column, seconds, show_fields, show_result, show_table, when

jobs_app = typer.Typer(help="Submit jobs and follow them.", no_args_is_help=True)
results_app = typer.Typer(help="Read the results of jobs.", no_args_is_help=True)


# Jobs


JOB_COLUMNS = [
    Column("job", whole=True),
    Column("agent", whole=True),
    Column("experiment", whole=True),
    Column("status", min_width=9),
    Column("message", drop=2, min_width=16),
    Column("created", drop=1, min_width=20),
]


def _job_row(job: dict[str, Any]) -> list[Any]:
    status = job.get("status") or {}
    return [
        job.get("job_id"),
        job.get("agent_id"),
        job.get("experiment_id"),
        status.get("status"),
        status.get("message"),
        when(job.get("created_time")),
    ]


def _show_job(job: dict[str, Any]) -> None:
    status = job.get("status") or {}
    show_fields(
        console,
        [
            ("job", job.get("job_id")),
            ("experiment", job.get("experiment_id")),
            ("agent", job.get("agent_id")),
            ("status", status.get("status")),
            ("message", status.get("message")),
            ("created", when(job.get("created_time"))),
            ("updated", when(status.get("timestamp"))),
        ],
    )


@jobs_app.command("submit")
def jobs_submit(
    experiment_id: str,
    agent_id: Annotated[
        str | None, typer.Argument(help="The agent; omit to let Ruckus pick a fitting one")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Only agents with this label, key=value (repeatable)"),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends")] = False,
    logs: LogsOption = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run EXPERIMENT_ID on AGENT_ID, or on the fitting agent with the fewest jobs (with
    --watch: exit code 2 when it does not complete)."""
    labels = dict(item.split("=", 1) for item in label or [] if "=" in item)
    if len(labels) != len(label or []):
        raise typer.BadParameter("labels are key=value", param_hint="--label")
    try:
        with _client(server, api_key) as client:
            job = client.submit_job(experiment_id, agent_id, labels)
            if job.get("placement"):
                out = Console(stderr=True) if as_json else console
                out.print(f"placed on {job['agent_id']}: {job['placement']['reason']}")
            if watch:
                # With --json the one document printed is the job as it ended.
                _watch(client, job["job_id"], as_json, logs)
            elif as_json:
                _print_json(job)
            else:
                _show_job(job)
    except RuckusAPIError as err:
        raise _fail(err) from err


@jobs_app.command("list")
def jobs_list(
    agent_id: Annotated[str | None, typer.Option("--agent")] = None,
    experiment_id: Annotated[str | None, typer.Option("--experiment")] = None,
    status: Annotated[JobStatusEnum | None, typer.Option("--status")] = None,
    limit: int = 50,
    offset: int = 0,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Jobs, newest first (--json: grouped by agent, as the API answers)."""
    try:
        with _client(server, api_key) as client:
            answer = client.list_jobs(
                agent_id=agent_id,
                experiment_id=experiment_id,
                status=status.value if status else None,
                limit=limit,
                offset=offset,
            )
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    jobs = [j for js in answer["jobs"].values() for j in js]
    rows = [_job_row(j) for j in _newest_first(jobs, "created_time")]
    show_table(console, "jobs", JOB_COLUMNS, rows, wide=wide)


@jobs_app.command("show")
def jobs_show(
    job_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One job, a field per line."""
    job = ask(server, api_key, lambda client: client.job(job_id))
    if as_json:
        _print_json(job)
    else:
        _show_job(job)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """Cancel a queued or running job."""
    try:
        with _client(server, api_key) as client:
            client.cancel_job(job_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    console.print(f"cancellation of {job_id} requested")


@jobs_app.command("watch")
def jobs_watch(
    job_id: str,
    logs: LogsOption = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a job live until it ends: status, stage, progress, elapsed time, and its results
    (exit code 2 when it does not complete). Ctrl-C stops following, not the job."""
    try:
        with _client(server, api_key) as client:
            _watch(client, job_id, as_json, logs)
    except RuckusAPIError as err:
        raise _fail(err) from err


@jobs_app.command("logs")
def jobs_logs(
    job_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends")
    ] = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """A job's log: from its agent while it runs, as saved once it ended."""
    try:
        with _client(server, api_key) as client:
            offset = 0
            while True:
                stretch = client.job_logs(job_id, offset)
                print(stretch["text"], end="", flush=True)
                offset = stretch["next_offset"]
                if stretch["complete"] or not (follow or stretch["text"]):
                    return
                if not stretch["text"]:
                    time.sleep(1.0)
    except RuckusAPIError as err:
        raise _fail(err) from err


def _watch(client: RuckusClient, job_id: str, as_json: bool, logs: bool) -> None:
    ended = follow_job(client, job_id, Console(stderr=True) if as_json else console, logs=logs)
    if as_json:
        _print_json(client.job(job_id))
    if ended.status.status is not JobStatusEnum.COMPLETED:
        raise typer.Exit(JOB_NOT_COMPLETED)


# Results


RESULT_COLUMNS = [
    Column("job", whole=True),
    Column("experiment", whole=True),
    Column("status", min_width=9),
    Column("duration", min_width=9, justify="right"),
    Column("agent", whole=True, drop=2),
    Column("completed", drop=1, min_width=20),
]


@results_app.command("show")
def results_show(
    job_id: Annotated[str | None, typer.Argument(help="A job id; omit to list")] = None,
    experiment_id: Annotated[str | None, typer.Option("--experiment")] = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """One job's results (exit code 2 when the job did not complete), or a list, newest first."""
    try:
        with _client(server, api_key) as client:
            if job_id:
                _show_one_result(client, job_id, as_json, wide)
                return
            answer = client.list_results(experiment_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    rows = [
        [
            r.get("job_id"),
            r.get("experiment_id"),
            r.get("status"),
            seconds(r.get("duration_seconds")),
            r.get("agent_id"),
            when(r.get("completed_at")),
        ]
        for r in _newest_first(answer["results"], "completed_at", "started_at")
    ]
    show_table(console, "results", RESULT_COLUMNS, rows, wide=wide)


def _show_one_result(client: RuckusClient, job_id: str, as_json: bool, wide: bool) -> None:
    try:
        answer = client.result(job_id)
    except RuckusAPIError as err:
        if err.status_code != 404:
            raise
        # No results: say how the job stands (a 404 for the job itself propagates).
        job = client.job(job_id)
        _show_job(job)
        if (job.get("status") or {}).get("status") in _TERMINAL:
            console.print(f"[red]job {job_id} left no results[/]", soft_wrap=True)
        else:
            console.print(f"job {job_id} has no results yet", soft_wrap=True)
        raise typer.Exit(JOB_NOT_COMPLETED) from None
    if as_json:
        _print_json(answer)
    else:
        show_result(console, answer["result"], wide=wide)
    if answer["result"].get("status") != JobStatusEnum.COMPLETED.value:
        raise typer.Exit(JOB_NOT_COMPLETED)


_TERMINAL = {s.value for s in JobStatusEnum if s.is_terminal}
