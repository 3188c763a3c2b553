"""Client commands over the Ruckus HTTP API: tables for people, `--json` for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from common.models import JobInfo, JobStatusEnum
from ruckus.demo import print_result, watch_job
from ruckus.http_client import DEFAULT_SERVER_URL, RuckusAPIError, RuckusClient

console = Console()

ServerOption = Annotated[
    str, typer.Option("--server", envvar="RUCKUS_SERVER_URL", help="Ruckus API base URL")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RUCKUS_API_KEY", help="API key, when the server has one"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]

agents_app = typer.Typer(help="Register agents and see their status.", no_args_is_help=True)
experiments_app = typer.Typer(
    help="Create, list, show and delete experiments.", no_args_is_help=True
)
jobs_app = typer.Typer(help="Submit jobs and follow them.", no_args_is_help=True)
results_app = typer.Typer(help="Read the results of jobs.", no_args_is_help=True)


def _client(server: str, api_key: str | None) -> RuckusClient:
    return RuckusClient(server or DEFAULT_SERVER_URL, api_key)


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        print(json.dumps(_plain(data), indent=2, default=str))
    else:
        console.print(table)


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _fail(err: RuckusAPIError) -> typer.Exit:
    # The server's words are text, not markup: `e.g. [fp32, fp64]` must reach the user whole.
    console.print(f"[red]error:[/] {escape(str(err))}")
    return typer.Exit(1)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


# Agents


@agents_app.command("register")
def agents_register(
    agent_url: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register the agent serving at AGENT_URL."""
    try:
        with _client(server, api_key) as client:
            answer = client.register_agent(agent_url)
    except RuckusAPIError as err:
        raise _fail(err) from err
    _emit(
        answer,
        as_json,
        _table(
            "registered",
            ["agent_id", "registered_at"],
            [[answer.get("agent_id"), answer.get("registered_at")]],
        ),
    )


@agents_app.command("list")
def agents_list(
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The registered agents."""
    try:
        with _client(server, api_key) as client:
            agents = client.list_agents()
    except RuckusAPIError as err:
        raise _fail(err) from err
    rows = [
        [a.get("agent_id"), a.get("agent_name"), a.get("agent_url"), a.get("registered_at")]
        for a in agents
    ]
    _emit(agents, as_json, _table("agents", ["id", "name", "url", "registered"], rows))


@agents_app.command("status")
def agents_status(
    agent_id: Annotated[str | None, typer.Argument()] = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Live status of one agent, or of all."""
    try:
        with _client(server, api_key) as client:
            statuses = [client.agent_status(agent_id)] if agent_id else client.agents_status()
    except RuckusAPIError as err:
        raise _fail(err) from err
    rows = [[s.get("agent_id"), s.get("status"), s.get("current_job_id")] for s in statuses]
    _emit(statuses, as_json, _table("agent status", ["id", "status", "current job"], rows))


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
    _emit(
        answer,
        as_json,
        _table(
            "created",
            ["experiment_id", "created_at"],
            [[answer.get("experiment_id"), answer.get("created_at")]],
        ),
    )


@experiments_app.command("list")
def experiments_list(
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The experiments."""
    try:
        with _client(server, api_key) as client:
            experiments = client.list_experiments()
    except RuckusAPIError as err:
        raise _fail(err) from err
    rows = [
        [e.get("id"), e.get("name"), (e.get("task") or {}).get("type"), e.get("model")]
        for e in experiments
    ]
    _emit(experiments, as_json, _table("experiments", ["id", "name", "task", "model"], rows))


@experiments_app.command("show")
def experiments_show(
    experiment_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """One experiment's full spec (JSON)."""
    try:
        with _client(server, api_key) as client:
            _emit(client.get_experiment(experiment_id), True)
    except RuckusAPIError as err:
        raise _fail(err) from err


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


def _job_rows(jobs: list[JobInfo]) -> list[list[Any]]:
    return [
        [
            j.job_id,
            j.agent_id,
            j.experiment_id,
            j.status.status.value,
            j.status.message,
            j.created_time.isoformat(timespec="seconds"),
        ]
        for j in jobs
    ]


JOB_COLUMNS = ["job", "agent", "experiment", "status", "message", "created"]


@jobs_app.command("submit")
def jobs_submit(
    experiment_id: str,
    agent_id: str,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends")] = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run EXPERIMENT_ID on AGENT_ID."""
    try:
        with _client(server, api_key) as client:
            job = client.submit_job(experiment_id, agent_id)
            _emit(job, as_json, _table("submitted", JOB_COLUMNS, _job_rows([job])))
            if watch:
                _watch(client, job.job_id, as_json)
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
) -> None:
    """Jobs, newest first, grouped by agent."""
    try:
        with _client(server, api_key) as client:
            grouped = client.list_jobs(
                agent_id=agent_id,
                experiment_id=experiment_id,
                status=status.value if status else None,
                limit=limit,
                offset=offset,
            )
    except RuckusAPIError as err:
        raise _fail(err) from err
    jobs = sorted(
        (j for js in grouped.values() for j in js), key=lambda j: j.created_time, reverse=True
    )
    _emit(grouped, as_json, _table("jobs", JOB_COLUMNS, _job_rows(jobs)))


@jobs_app.command("show")
def jobs_show(
    job_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One job."""
    try:
        with _client(server, api_key) as client:
            job = client.get_job(job_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    _emit(job, as_json, _table(job_id, JOB_COLUMNS, _job_rows([job])))


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
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job's status live until it ends."""
    try:
        with _client(server, api_key) as client:
            _watch(client, job_id, as_json)
    except RuckusAPIError as err:
        raise _fail(err) from err


def _watch(client: RuckusClient, job_id: str, as_json: bool) -> None:
    job = watch_job(client, job_id, Console(stderr=True) if as_json else console)
    if as_json:
        _emit(job, True)
    if job.status.status is not JobStatusEnum.COMPLETED:
        raise typer.Exit(2)


# Results


@results_app.command("show")
def results_show(
    job_id: Annotated[str | None, typer.Argument(help="A job id; omit to list")] = None,
    experiment_id: Annotated[str | None, typer.Option("--experiment")] = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One job's results, or the results of an experiment (or of all)."""
    try:
        with _client(server, api_key) as client:
            if job_id:
                result = client.get_result(job_id)
                _emit(result, True) if as_json else print_result(result, console)
                return
            results = client.list_results(experiment_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    rows = [
        [r.get("job_id"), r.get("experiment_id"), r.get("status"), r.get("duration_seconds")]
        for r in results
    ]
    _emit(results, as_json, _table("results", ["job", "experiment", "status", "seconds"], rows))
