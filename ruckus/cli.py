"""The `ruckus` command: each Ruckus process, and the whole local stack."""

from __future__ import annotations

import typer

from ruckus.db import app as db_app

app = typer.Typer(help="Ruckus: ML benchmark jobs on a fleet of machines, run by Temporal.")
app.add_typer(db_app, name="db")


@app.command()
def agent(
    host: str | None = typer.Option(None, help="Interface to listen on (RUCKUS_AGENT_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (RUCKUS_AGENT_PORT)"),
) -> None:
    """Run an agent that executes experiments on this machine."""
    from agent.main import run

    run(host=host, port=port)


@app.command()
def worker() -> None:
    """Run a worker: the job and queue workflows and their activities (TEMPORAL_* to connect)."""
    import asyncio
    import logging

    from workflows.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker())


if __name__ == "__main__":
    app()
