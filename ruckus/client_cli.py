"""Client commands over the Ruckus HTTP API: tables for people, `--json` for scripts.

`--json` prints the API's answer exactly as it came; tables list the newest first and keep
every id and URL whole, dropping the least useful columns on a narrow terminal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from common.models import JobStatusEnum
from ruckus.follow import follow_job
from ruckus.http_client import DEFAULT_SERVER_URL, RuckusAPIError, RuckusClient
from ruckus.tables import Column, seconds, show_fields, show_result, show_table, when

console = Console()

ServerOption = Annotated[
    str, typer.Option("--server", envvar="RUCKUS_SERVER_URL", help="Ruckus API base URL")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RUCKUS_API_KEY", help="API key, when the server has one"),
]
LogsOption = Annotated[bool, typer.Option("--logs", help="Print the job's log lines as they come")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer")]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Every column, even past the terminal's width")
]

# Exit codes: 1 the command failed (the server's reason is printed); 2 the job did not complete.
JOB_NOT_COMPLETED = 2

agents_app = typer.Typer(
    help="Register and unregister agents, and see their status.", no_args_is_help=True
)
experiments_app = typer.Typer(
    help="Create, list, show and delete experiments.", no_args_is_help=True
)
jobs_app = typer.Typer(help="Submit jobs and follow them.", no_args_is_help=True)
results_app = typer.Typer(help="Read the results of jobs.", no_args_is_help=True)


def _client(server: str, api_key: str | None) -> RuckusClient:
    return RuckusClient(server or DEFAULT_SERVER_URL, api_key)


def _print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2))


def _fail(err: RuckusAPIError) -> typer.Exit:
    # The server's words are text, not markup: `e.g. [fp32, fp64]` must reach the user whole.
    console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
    return typer.Exit(1)


def _newest_first(items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    def stamp(item: dict[str, Any]) -> str:
        return next((str(item[k]) for k in keys if item.get(k)), "")

    return sorted(items, key=stamp, reverse=True)


# Agents


@agents_app.command("register")
def agents_register(
    agent_url: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register the agent serving at AGENT_URL (an agent started with --server does it itself)."""
    try:
        with _client(server, api_key) as client:
            answer = client.register_agent(agent_url)
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    show_fields(
        console,
        [
            ("agent", answer.get("agent_id")),
            ("url", answer.get("agent_url") or agent_url),
            ("registered", when(answer.get("registered_at"))),
        ],
    )


@agents_app.command("unregister")
def agents_unregister(
    agent_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forget AGENT_ID: its queued and running jobs are cancelled, its history kept."""
    try:
        with _client(server, api_key) as client:
            answer = client.unregister_agent(agent_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    cancelled = answer.get("cancelled_jobs") or []
    console.print(
        f"unregistered {agent_id}; "
        + (f"cancelled jobs: {', '.join(cancelled)}" if cancelled else "no job was cancelled"),
        soft_wrap=True,
    )


AGENT_COLUMNS = [
    Column("id", whole=True),
    Column("url", whole=True),
    Column("status", drop=1, min_width=11),
    Column("name", drop=2),
    Column("labels", drop=3, min_width=12),
    Column("registered", drop=4, min_width=20),
]


@agents_app.command("list")
def agents_list(
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """The registered agents, newest registration first."""
    try:
        with _client(server, api_key) as client:
            answer = client.list_agents()
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    rows = [
        [
            a.get("agent_id"),
            a.get("agent_url"),
            a.get("status"),
            a.get("agent_name"),
            " ".join(f"{k}={v}" for k, v in sorted((a.get("labels") or {}).items())),
            when(a.get("registered_at")),
        ]
        for a in _newest_first(answer["agents"], "registered_at")
    ]
    show_table(console, "agents", AGENT_COLUMNS, rows, wide=wide)


@agents_app.command("status")
def agents_status(
    agent_id: Annotated[str | None, typer.Argument()] = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Live status of one agent, or of all."""
    try:
        with _client(server, api_key) as client:
            answer = client.agent_status(agent_id) if agent_id else client.agents_status()
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    statuses = [answer["agent"]] if agent_id else answer["agents"]
    rows = [
        [
            s.get("agent_id"),
            s.get("status"),
            s.get("current_job_id"),
            len(s.get("queued_jobs") or []),
            seconds(s.get("uptime_seconds")),
        ]
        for s in statuses
    ]
    columns = [
        Column("id", whole=True),
        Column("status", min_width=11),
        Column("current job", whole=True),
        Column("queued", drop=2, min_width=6, justify="right"),
        Column("uptime", drop=1, justify="right"),
    ]
    show_table(console, "agent status", columns, rows, wide=wide)


# Experiments


@experiments_app.command("create")
def experiments_create(
    file: Annotated[Path, typer.Option("-f", "--file", exists=True, help="YAML or JSON spec")],
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an experiment from a YAML or JSON file."""
    try:
        spec = yaml.safe_load(file.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as err:
        console.print(f"[red]error:[/] {file} is not valid YAML or JSON: {escape(str(err))}")
        raise typer.Exit(1) from err
    if isinstance(spec, dict) and "experiment_spec" in spec:
        spec = spec["experiment_spec"]
    try:
        with _client(server, api_key) as client:
            answer = client.create_experiment(spec)
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    show_fields(
        console,
        [("experiment", answer.get("experiment_id")), ("created", when(answer.get("created_at")))],
    )


@experiments_app.command("list")
def experiments_list(
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """The experiments, newest first."""
    try:
        with _client(server, api_key) as client:
            answer = client.list_experiments()
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    rows = [
        [
            e.get("id"),
            (e.get("task") or {}).get("type"),
            e.get("name"),
            e.get("model"),
            when(e.get("created_at")),
        ]
        for e in _newest_first(answer["experiments"], "created_at")
    ]
    columns = [
        Column("id", whole=True),
        Column("task", min_width=17),
        Column("name", drop=3, min_width=16),
        Column("model", drop=2),
        Column("created", drop=1, min_width=20),
    ]
    show_table(console, "experiments", columns, rows, wide=wide)


@experiments_app.command("show")
def experiments_show(
    experiment_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One experiment's full spec, as YAML (what `experiments create -f` takes)."""
    try:
        with _client(server, api_key) as client:
            answer = client.get_experiment(experiment_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    if as_json:
        _print_json(answer)
        return
    print(yaml.safe_dump(answer["experiment"], sort_keys=False, allow_unicode=True), end="")


@experiments_app.command("delete")
def experiments_delete(
    experiment_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """Delete an experiment (refused while it has unfinished jobs)."""
    try:
        with _client(server, api_key) as client:
            client.delete_experiment(experiment_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    console.print(f"deleted {experiment_id}")


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
    agent_id: str,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends")] = False,
    logs: LogsOption = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run EXPERIMENT_ID on AGENT_ID (with --watch: exit code 2 when it does not complete)."""
    try:
        with _client(server, api_key) as client:
            job = client.submit_job(experiment_id, agent_id)
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
    try:
        with _client(server, api_key) as client:
            job = client.job(job_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
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
