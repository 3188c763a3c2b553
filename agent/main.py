"""Entry point of the agent process: settings from RUCKUS_AGENT_*, flags override them."""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

import uvicorn

from agent.app import create_app
from common.settings import AgentSettings

DEFAULT_PORT = AgentSettings.model_fields["port"].default
DEFAULT_DATA_DIR = AgentSettings.model_fields["data_dir"].default


class DataDirInUse(Exception):
    """Another agent on this machine runs on the same data directory."""


def agent_settings(**overrides: Any) -> AgentSettings:
    """The environment's settings with the flags given; per-port data dir and generic fallbacks."""
    labels = overrides.pop("labels", None) or {}
    settings = AgentSettings(**{k: v for k, v in overrides.items() if v is not None})
    update: dict[str, Any] = {"labels": settings.labels | labels} if labels else {}
    # A second agent on one machine (another port) must not take the first one's id and jobs.
    if "data_dir" not in settings.model_fields_set and settings.port != DEFAULT_PORT:
        update["data_dir"] = DEFAULT_DATA_DIR.with_name(f"agent-{settings.port}")
    # The client commands' variables name the same server and key.
    if settings.server_url is None and os.environ.get("RUCKUS_SERVER_URL"):
        update["server_url"] = os.environ["RUCKUS_SERVER_URL"]
    if settings.api_key is None and os.environ.get("RUCKUS_API_KEY"):
        update["api_key"] = os.environ["RUCKUS_API_KEY"]
    return AgentSettings.model_validate(settings.model_dump() | update) if update else settings


def lock_data_dir(data_dir: Path) -> IO[str] | None:
    """Hold the data directory for this process; DataDirInUse when another agent holds it.

    None when the directory is unusable: the agent then starts degraded and says why.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = (data_dir / "agent.lock").open("a+")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"the data dir {data_dir} is in use by another agent on this machine: "
            "give this one its own with --data-dir (RUCKUS_AGENT_DATA_DIR)"
        ) from None
    return handle


def run(**overrides: Any) -> None:
    """Run the agent until a signal; flags (host, port, data_dir, ...) override settings."""
    settings = agent_settings(**overrides)
    try:
        lock = lock_data_dir(settings.data_dir)
    except DataDirInUse as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
    finally:
        if lock is not None:
            lock.close()


if __name__ == "__main__":
    run()
