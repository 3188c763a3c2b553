"""The `ruckus` command: each Ruckus process, and the whole local stack."""

from __future__ import annotations

from pathlib import Path

import typer

from ruckus.client_cli import agents_app, experiments_app
from ruckus.db import app as db_app
from ruckus.jobs_cli import jobs_app, results_app
from ruckus.runs_cli import compare, report, runs_app

app = typer.Typer(
    help="Ruckus: ML benchmark jobs on a fleet of machines, run by Temporal.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(agents_app, name="agents")
app.add_typer(experiments_app, name="experiments")
app.add_typer(jobs_app, name="jobs")
app.add_typer(results_app, name="results")
app.add_typer(runs_app, name="runs")
app.command()(compare)
app.command()(report)


@app.command()
def dev(
    data_dir: Path = typer.Option(Path(".ruckus"), help="Where data and logs live"),
    temporal_port: int = typer.Option(7233, help="Temporal dev server frontend port"),
    ui_port: int = typer.Option(8233, help="Temporal web UI port"),
    api_port: int = typer.Option(8000, help="Ruckus API port"),
    agent_port: int = typer.Option(8081, help="Local agent port"),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Run a first job and show it"),
    temporal_binary: Path | None = typer.Option(
        None, envvar="RUCKUS_TEMPORAL_BINARY", help="The `temporal` CLI to run"
    ),
) -> None:
    """Run the whole local stack: Temporal, a worker, the API and an agent, until Ctrl-C."""
    from common.settings import ServerSettings
    from ruckus.dev import DevConfig, run_dev

    key = ServerSettings().api_key
    cfg = DevConfig(
        api_key=key.get_secret_value() if key else None,
        data_dir=data_dir,
        temporal_port=temporal_port,
        ui_port=ui_port,
        api_port=api_port,
        agent_port=agent_port,
        demo=demo,
        temporal_binary=temporal_binary,
    )
    raise typer.Exit(run_dev(cfg))


def _labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, label = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{value!r} is not key=value", param_hint="--label")
        labels[key.strip()] = label.strip()
    return labels


@app.command()
def agent(
    host: str | None = typer.Option(None, help="Interface to listen on (RUCKUS_AGENT_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (RUCKUS_AGENT_PORT)"),
    data_dir: Path | None = typer.Option(
        None,
        help="Job records, results and the agent id (RUCKUS_AGENT_DATA_DIR); "
        ".ruckus/agent, or .ruckus/agent-PORT on a port other than 8081",
    ),
    name: str | None = typer.Option(None, help="A readable name (RUCKUS_AGENT_AGENT_NAME)"),
    server: str | None = typer.Option(
        None,
        help="Register with this Ruckus API at start "
        "(RUCKUS_AGENT_SERVER_URL, else RUCKUS_SERVER_URL)",
    ),
    advertise_url: str | None = typer.Option(
        None,
        help="This agent's URL as the server reaches it (RUCKUS_AGENT_ADVERTISE_URL); "
        "http://HOST:PORT by default",
    ),
    label: list[str] = typer.Option(
        [], help="key=value, repeatable: labels the agent reports (RUCKUS_AGENT_LABELS)"
    ),
    api_key: str | None = typer.Option(
        None,
        help="The server's API key for registering (RUCKUS_AGENT_API_KEY, else RUCKUS_API_KEY)",
    ),
) -> None:
    """Run an agent that executes experiments on this machine (and joins a server)."""
    from agent.main import run

    run(
        host=host,
        port=port,
        data_dir=data_dir,
        agent_name=name,
        server_url=server,
        advertise_url=advertise_url,
        labels=_labels(label),
        api_key=api_key,
    )


@app.command()
def api(
    host: str | None = typer.Option(None, help="Interface to listen on (RUCKUS_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (RUCKUS_PORT)"),
) -> None:
    """Run the API server (TEMPORAL_* to connect, RUCKUS_STORAGE_* for storage)."""
    from api.main import run

    run(host=host, port=port)


@app.command()
def worker() -> None:
    """Run a worker: the job and queue workflows and their activities (TEMPORAL_* to connect)."""
    import logging

    from common.event_loop import run
    from workflows.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per agent call would bury the jobs' own events: every poll is one.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run(run_worker())


@app.command("codec-server")
def codec_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on; keep it private"),
    port: int = typer.Option(8888, help="Port to listen on"),
    ui_origin: list[str] = typer.Option(
        ["http://localhost:8233"], help="Origin of the Temporal web UI (repeatable)"
    ),
) -> None:
    """Decrypt payloads for the Temporal web UI and CLI with RUCKUS_PAYLOAD_KEY."""
    import uvicorn

    from api.codec_server import create_codec_app
    from common.settings import JobManagerSettings

    key = JobManagerSettings().payload_key
    if key is None:
        raise typer.BadParameter("set RUCKUS_PAYLOAD_KEY to the key the workers use")
    uvicorn.run(create_codec_app(key.get_secret_value(), ui_origin), host=host, port=port)


if __name__ == "__main__":
    app()
