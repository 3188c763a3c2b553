"""The processes of one benchmark run (Temporal dev server, floor worker, Ruckus worker, API,
instant agents) and the measuring helpers the benchmarks share."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import psutil

from bench.engine import engine_counts
from ruckus.supervisor import Child, Supervisor, http_ok, temporal_ready
from ruckus.temporal_server import dev_server_command


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(proc: psutil.Process, descendants: bool = True) -> float:
    """User and system CPU of a process, and of its descendants unless told not, so far."""
    total = 0.0
    for p in [proc, *(proc.children(recursive=True) if descendants else [])]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float], q: float = 0.5) -> str:
    return f"{pct(values, q) * 1000:.0f}"


class CpuMeter:
    """CPU seconds of processes by name, summed over the windows it is started and stopped for;
    the one named "benchmark" (the measuring process) without its descendants (the stack).
    Given the dev server's metrics port, it sums the engine's counts over them too."""

    def __init__(self, procs: dict[str, psutil.Process], metrics_port: int | None = None) -> None:
        self.procs = procs
        self.total = dict.fromkeys(procs, 0.0)
        self._started: dict[str, float] = {}
        self.metrics_port = metrics_port
        self.engine: Counter[str] = Counter()
        self._engine_started: Counter[str] = Counter()

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(p, name != "benchmark") for name, p in self.procs.items()}

    def start(self) -> None:
        self._started = self._now()
        if self.metrics_port is not None:
            self._engine_started = engine_counts(self.metrics_port)

    def stop(self) -> None:
        for name, seconds in self._now().items():
            self.total[name] += seconds - self._started[name]
        if self.metrics_port is not None:
            self.engine.update(engine_counts(self.metrics_port))
            self.engine.subtract(self._engine_started)


def temporal_child(root: Path, port: int, metrics_port: int | None = None) -> Child:
    """The benchmark's own Temporal dev server, its database and log under `root`."""
    return Child(
        "temporal",
        dev_server_command(db_file=root / "temporal.db", port=port, metrics_port=metrics_port),
        root / "logs" / "temporal.log",
    )


class Stack:
    """The processes of one benchmark run, all children of this one."""

    def __init__(self, root: Path, agents: int, profile: bool = False) -> None:
        self.root = root
        # The worker under cProfile (bench/profiled.py), switched on for the jobs rounds.
        self.profile = root / "worker.prof" if profile else None
        self.temporal_port = free_port()
        self.metrics_port = free_port()
        self.api_port = free_port()
        self.agent_ports = [free_port() for _ in range(agents + 2)]
        self.address = f"127.0.0.1:{self.temporal_port}"
        self.supervisor = Supervisor(grace=5)
        self.task_queue = "ruckus-jobs"
        env = {
            "TEMPORAL_ADDRESS": self.address,
            "RUCKUS_STORAGE_DATA_DIR": str(root / "storage"),
            "RUCKUS_TASK_QUEUE": self.task_queue,
            "RUCKUS_CALLBACK_BASE_URL": self.api_url,
        }
        python = [sys.executable, "-m"]
        logs = root / "logs"
        self.children = {
            "temporal": temporal_child(root, self.temporal_port, self.metrics_port),
            "floor": Child(
                "floor worker",
                [*python, "bench.floor", "--address", self.address, "--task-queue", "floor"],
                logs / "floor.log",
            ),
            "worker": Child("worker", [*python, *self.worker_module], logs / "worker.log", env),
            "api": Child(
                "api",
                [*python, "ruckus.cli", "api", "--port", str(self.api_port)],
                logs / "api.log",
                env,
            ),
            "agents": Child(
                "agents",
                [*python, "bench.instant_agent", "--ports", *map(str, self.agent_ports)],
                logs / "agents.log",
            ),
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def worker_module(self) -> list[str]:
        worker = ["ruckus.cli", "worker"]
        return worker if self.profile is None else ["bench.profiled", str(self.profile), *worker]

    def agent_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.agent_ports[i]}"

    def processes(self) -> dict[str, psutil.Process]:
        """The stack's processes and this one, by name."""
        procs = {"benchmark": psutil.Process()}
        for name, child in self.children.items():
            assert child.pid is not None
            procs[name] = psutil.Process(child.pid)
        return procs

    def start(self) -> None:
        c = self.children
        self.supervisor.start(c["temporal"], lambda: temporal_ready(self.address), 60, "")
        self.supervisor.start(c["floor"], lambda: "ready" in c["floor"].output(), 60, "")
        self.supervisor.start(c["worker"], lambda: "serving" in c["worker"].output(), 60, "")
        self.supervisor.start(c["api"], lambda: http_ok(self.api_url + "/health"), 60, "")
        self.supervisor.start(c["agents"], lambda: http_ok(self.agent_url(0) + "/health"), 60, "")

    def stop(self) -> None:
        self.supervisor.stop_all()
