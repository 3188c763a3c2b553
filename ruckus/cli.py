"""The `ruckus` command: each Ruckus process, and the whole local stack."""

from __future__ import annotations

from pathlib import Path

import typer

from ruckus.client_cli import agents_app, experiments_app, jobs_app, results_app
from ruckus.db import app as db_app
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
    from ruckus.dev import DevConfig, run_dev

    cfg = DevConfig(
        data_dir=data_dir,
        temporal_port=temporal_port,
        ui_port=ui_port,
        api_port=api_port,
        agent_port=agent_port,
        demo=demo,
        temporal_binary=temporal_binary,
    )
    raise typer.Exit(run_dev(cfg))


@app.command()
def agent(
    host: str | None = typer.Option(None, help="Interface to listen on (RUCKUS_AGENT_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (RUCKUS_AGENT_PORT)"),
) -> None:
    """Run an agent that executes experiments on this machine."""
    from agent.main import run

    run(host=host, port=port)


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
