"""Real server processes for tests: free ports, polling with a deadline, start/stop/kill."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


# Ports a test may hand to a child start here, below the range the OS draws from for the
# local end of outgoing connections (and for port 0).
LOWEST_TEST_PORT = 10000
_handed_out: set[int] = set()
# Its own generator: a plugin that reseeds `random` for every test would repeat the draws.
_draw = random.Random()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now that stays free until the child binds it: drawn from this
    test process's own share of the ports below the OS's ephemeral range, so neither an
    outgoing connection nor another test process can take it in between."""
    low, high = _port_share()
    for _ in range(200):
        port = _draw.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {low} and {high}")


def _port_share() -> tuple[int, int]:
    """This pytest process's slice of [LOWEST_TEST_PORT, first ephemeral port)."""
    try:
        ranges = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        first_ephemeral = int(ranges[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768  # Linux's default
    high = max(first_ephemeral, LOWEST_TEST_PORT + 2000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    width = (high - LOWEST_TEST_PORT) // count
    low = LOWEST_TEST_PORT + index * width
    return low, low + width


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = 0.05,
    what: str = "the condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout` s.

    Exceptions of the `ignore` types count as "not yet" (e.g. connection refused while a
    server starts); any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ignore as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            hint = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what} did not happen within {timeout:g} s{hint}")
        time.sleep(interval)


class ServiceProcess:
    """A command serving HTTP on `port`; ready when GET `health_path` answers 200."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        health_path: str = "/health",
        log_path: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.args = list(args)
        self.port = port
        self.host = host
        self.env = dict(os.environ if env is None else env)
        self.health_path = health_path
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="service-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO
            )

        def healthy() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.args} exited early; its log:\n{self.log()[-3000:]}")
            return httpx.get(self.url + self.health_path, timeout=2).status_code == 200

        try:
            wait_until(
                healthy,
                self.start_timeout,
                interval=0.1,
                what=f"{self.url}{self.health_path} answering 200",
                ignore=(httpx.TransportError,),
            )
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AgentProcess(ServiceProcess):
    """A real Ruckus agent (`python -m agent.main`) on a free port with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        port = port or free_port()
        # Only the settings given here: RUCKUS_AGENT_* from the caller's shell must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_AGENT_")}
        env |= {
            "RUCKUS_AGENT_HOST": "127.0.0.1",
            "RUCKUS_AGENT_PORT": str(port),
            "RUCKUS_AGENT_DATA_DIR": str(data_dir),
            **{f"RUCKUS_AGENT_{k.upper()}": v for k, v in (settings or {}).items()},
        }
        super().__init__(
            [sys.executable, "-m", "agent.main"], port=port, env=env, log_path=log_path
        )
        self.data_dir = data_dir
