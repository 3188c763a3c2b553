"""`ruckus db`: the server's storage database."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="The server's storage database (RUCKUS_STORAGE_*).", no_args_is_help=True)


@app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Alembic revision to migrate to"),
) -> None:
    """Apply the schema migrations to the configured database."""
    from sqlalchemy.exc import SQLAlchemyError

    from common.settings import StorageSettings
    from common.storage.engine import database_url
    from common.storage.migrate import upgrade_database

    settings = StorageSettings()
    where = database_url(settings).render_as_string(hide_password=True)
    try:
        before, after = asyncio.run(upgrade_database(settings, revision))
    except (OSError, SQLAlchemyError) as err:
        typer.echo(f"could not migrate {where}: {err}", err=True)
        raise typer.Exit(1) from err
    if before == after:
        typer.echo(f"{where} is up to date (revision {after})")
    else:
        typer.echo(f"{where} upgraded from revision {before or '(empty)'} to {after}")
