"""`ruckus dev`: the whole local stack on its embedded defaults, and a first job to watch."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.table import Table

from common.settings import JobManagerSettings
from ruckus.demo import run_demo
from ruckus.http_client import RuckusAPIError, RuckusClient
from ruckus.job_feed import JobFeed
from ruckus.supervisor import (
    Child,
    StackError,
    Supervisor,
    http_ok,
    require_free_port,
    temporal_ready,
)
from ruckus.temporal_server import (
    TemporalBinaryNotFound,
    dev_server_command,
    find_temporal_binary,
)


@dataclass
class DevConfig:
    data_dir: Path = Path(".ruckus")
    host: str = "127.0.0.1"
    temporal_port: int = 7233
    ui_port: int = 8233
    api_port: int = 8000
    agent_port: int = 8081
    demo: bool = True
    temporal_binary: Path | None = None
    start_timeout: float = 60.0
    # The API's own key (RUCKUS_API_KEY): the API child enforces it, so every call here sends it.
    api_key: str | None = None

    def client(self) -> RuckusClient:
        return RuckusClient(self.api_url, self.api_key)

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def console_url(self) -> str:
        return f"{self.api_url}/"

    @property
    def agent_url(self) -> str:
        return f"http://{self.host}:{self.agent_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    def workflow_url(self, workflow_id: str) -> str:
        return f"{self.ui_url}/namespaces/default/workflows/{workflow_id}"


class Stop(Exception):
    """SIGINT or SIGTERM: stop the stack."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def run_dev(cfg: DevConfig, console: Console | None = None) -> int:
    """Run the stack until a signal; 0 on a clean stop, 1 when something failed."""
    console = console or Console()
    supervisor = Supervisor()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    try:
        _start(cfg, supervisor, console)
        if cfg.demo:
            with cfg.client() as client:
                run_demo(client, _agent_id(cfg), cfg, console)
        _print_places(cfg, supervisor, console)
        with cfg.client() as client:
            return _watch(supervisor, console, JobFeed(client))
    except Stop as stop:
        console.print(f"[bold]{stop}[/]: stopping Ruckus")
        return 0
    except (StackError, RuckusAPIError, TemporalBinaryNotFound) as err:
        console.print(f"[red]error:[/] {err}", soft_wrap=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        supervisor.stop_all()
        console.print("all Ruckus processes stopped")


def _start(cfg: DevConfig, supervisor: Supervisor, console: Console) -> None:
    for port, what, flag in (
        (cfg.temporal_port, "Temporal dev server", "--temporal-port"),
        (cfg.ui_port, "Temporal web UI", "--ui-port"),
        (cfg.api_port, "Ruckus API", "--api-port"),
        (cfg.agent_port, "local agent", "--agent-port"),
    ):
        require_free_port(cfg.host, port, what, flag)
    data = cfg.data_dir.resolve()
    logs = data / "logs"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        "TEMPORAL_ADDRESS": cfg.temporal_address,
        "RUCKUS_STORAGE_DATA_DIR": str(data),
        # Agents report a job's end to the API at once; polling stays the fallback.
        "RUCKUS_CALLBACK_BASE_URL": cfg.api_url,
    }
    python = [sys.executable, "-m", "ruckus.cli"]

    with console.status("starting the Temporal dev server"):
        cmd = dev_server_command(
            db_file=data / "temporal.db",
            port=cfg.temporal_port,
            ui_port=cfg.ui_port,
            ip=cfg.host,
            binary=find_temporal_binary(cfg.temporal_binary),
        )
        supervisor.start(
            Child("Temporal dev server", cmd, logs / "temporal.log"),
            lambda: temporal_ready(cfg.temporal_address),
            cfg.start_timeout,
            "change its port with --temporal-port",
        )
    console.print(f"[green]✓[/] Temporal dev server  {cfg.temporal_address}  (web UI {cfg.ui_url})")
    with console.status("starting the worker"):
        worker = Child("worker", [*python, "worker"], logs / "worker.log", env)
        supervisor.start(
            worker,
            lambda: "worker serving task queue" in worker.output(),
            cfg.start_timeout,
            "it needs the Temporal dev server and the storage under --data-dir",
        )
    console.print("[green]✓[/] worker")
    with console.status("starting the API server"):
        api_cmd = [*python, "api", "--host", cfg.host, "--port", str(cfg.api_port)]
        # The console links each job and run to its workflow in this dev server's web UI.
        api_env = {**env, "RUCKUS_TEMPORAL_UI_URL": cfg.ui_url}
        supervisor.start(
            Child("API server", api_cmd, logs / "api.log", api_env),
            lambda: http_ok(cfg.api_url + "/health"),
            cfg.start_timeout,
            "change its port with --api-port",
        )
    console.print(
        f"[green]✓[/] API server  {cfg.api_url}  (web console {cfg.console_url}, "
        f"docs {cfg.api_url}/docs)"
    )
    with console.status("starting the local agent"):
        agent_cmd = [
            *python, "agent",
            "--host", cfg.host,
            "--port", str(cfg.agent_port),
            "--data-dir", str(data / "agent"),
            # It registers itself, with the key the API asks for (RUCKUS_API_KEY, inherited).
            "--server", cfg.api_url,
            "--advertise-url", cfg.agent_url,
        ]  # fmt: skip
        agent = Child("local agent", agent_cmd, logs / "agent.log")
        supervisor.start(
            agent,
            lambda: http_ok(cfg.agent_url + "/health"),
            cfg.start_timeout,
            "change its port with --agent-port",
        )
        agent_id = _agent_id(cfg)
        with cfg.client() as client:
            _wait_registered(client, cfg, agent, agent_id)
    console.print(f"[green]✓[/] local agent {agent_id}  {cfg.agent_url}  (registered)")


REFUSED = "registration with"


def _wait_registered(client: RuckusClient, cfg: DevConfig, agent: Child, agent_id: str) -> None:
    """Until the API knows the agent at its URL; the agent's refusal line ends the wait."""
    deadline = time.monotonic() + cfg.start_timeout
    while True:
        try:
            if client.agent_info(agent_id).get("agent_url") == cfg.agent_url:
                return
        except RuckusAPIError as err:
            if err.status_code not in (404, None):
                raise
        refused = [line for line in agent.output().splitlines() if REFUSED in line]
        if refused:
            reason = refused[-1].split(REFUSED, 1)[1].strip()
            raise StackError(f"the local agent could not register: {reason}")
        if not agent.alive():
            raise StackError(
                f"the local agent exited with code {agent.exit_code()}; see {agent.log_path}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"the local agent did not register within {cfg.start_timeout:g} s; "
                f"see {agent.log_path}"
            )
        time.sleep(0.1)


def _agent_id(cfg: DevConfig) -> str:
    return str(httpx.get(cfg.agent_url + "/health", timeout=5).json()["agent_id"])


def _watch(supervisor: Supervisor, console: Console, feed: JobFeed) -> int:
    """Until a child dies: one line per job event meanwhile."""
    while True:
        feed.look(console)
        dead = supervisor.dead_child()
        if dead is not None:
            console.print(
                f"[red]error:[/] the {dead.name} exited with code {dead.exit_code()}; "
                f"see {dead.log_path}",
                soft_wrap=True,
            )
            console.print(dead.last_lines(), markup=False, highlight=False)
            return 1
        time.sleep(0.5)


def _print_places(cfg: DevConfig, supervisor: Supervisor, console: Console) -> None:
    table = Table(title="Ruckus is running (Ctrl-C stops everything)", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    table.add_column("pid", justify="right")
    pids = {c.name: str(c.pid) for c in supervisor.children}
    table.add_row("web console", cfg.console_url, pids["API server"])
    table.add_row("API", f"{cfg.api_url}  (docs: {cfg.api_url}/docs)", pids["API server"])
    table.add_row("Temporal web UI", cfg.ui_url, pids["Temporal dev server"])
    table.add_row("Temporal frontend", cfg.temporal_address, "")
    table.add_row("local agent", cfg.agent_url, pids["local agent"])
    table.add_row("worker", f"task queue {JobManagerSettings().task_queue}", pids["worker"])
    table.add_row("data and logs", str(cfg.data_dir.resolve()), "")
    console.print(table)
