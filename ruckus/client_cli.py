"""Client commands over the Ruckus HTTP API: tables for people, `--json` for scripts.

`--json` prints the API's answer exactly as it came; tables list the newest first and keep
every id and URL whole, dropping the least useful columns on a narrow terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from ruckus.http_client import DEFAULT_SERVER_URL, RuckusAPIError, RuckusClient
from ruckus.tables import Column, seconds, show_fields, show_table, when

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


def _client(server: str, api_key: str | None) -> RuckusClient:
    return RuckusClient(server or DEFAULT_SERVER_URL, api_key)


def _print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2))


T = TypeVar("T")


def ask(server: str, api_key: str | None, call: Callable[[RuckusClient], T]) -> T:
    """One call to the server; its error is printed and the command exits 1."""
    try:
        with _client(server, api_key) as client:
            return call(client)
    except RuckusAPIError as err:
        raise _fail(err) from err


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
    answer = ask(server, api_key, lambda client: client.register_agent(agent_url))
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
    answer = ask(server, api_key, lambda client: client.unregister_agent(agent_id))
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
    answer = ask(server, api_key, lambda client: client.list_agents())
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
    answer = ask(
        server,
        api_key,
        lambda client: client.agent_status(agent_id) if agent_id else client.agents_status(),
    )
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
    answer = ask(server, api_key, lambda client: client.create_experiment(spec))
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
    answer = ask(server, api_key, lambda client: client.list_experiments())
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
    answer = ask(server, api_key, lambda client: client.get_experiment(experiment_id))
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
