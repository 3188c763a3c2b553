"""Entry point of the API process: settings from RUCKUS_*, flags override them."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from api.app import create_app
from common.settings import ServerSettings


def run(host: str | None = None, port: int | None = None) -> None:
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    run()
