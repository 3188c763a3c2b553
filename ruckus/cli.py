"""The `ruckus` command: each Ruckus process, and the whole local stack."""

from __future__ import annotations

import typer

app = typer.Typer(help="Ruckus: ML benchmark jobs on a fleet of machines, run by Temporal.")


@app.command()
def agent(
    host: str | None = typer.Option(None, help="Interface to listen on (RUCKUS_AGENT_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (RUCKUS_AGENT_PORT)"),
) -> None:
    """Run an agent that executes experiments on this machine."""
    from agent.main import run

    run(host=host, port=port)


if __name__ == "__main__":
    app()
