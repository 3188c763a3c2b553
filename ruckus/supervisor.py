"""Supervised child processes for the local stack: start, wait healthy, watch, stop in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client


def http_ok(url: str) -> bool:
    """GET `url` answers 200 (a service's health endpoint)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def temporal_ready(address: str) -> bool:
    """The Temporal frontend at `address` answers; call outside a running event loop."""

    async def check() -> bool:
        client = await Client.connect(address)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True

    try:
        return asyncio.run(asyncio.wait_for(check(), 5))
    except Exception:
        return False


class StackError(Exception):
    """A one-line reason the stack cannot start or keep running."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, what: str, flag: str) -> None:
    if not port_is_free(host, port):
        raise StackError(
            f"port {port} for the {what} is already in use: choose another with {flag}"
        )


@dataclass
class Child:
    """One supervised process; its output goes to `log_path`."""

    name: str
    cmd: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_offset: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # Its own session: Ctrl-C reaches only the supervisor, which stops children in order.
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL to the whole process group after `grace` seconds."""
        if self.proc is None:
            return
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        # Anything the child left in its group (an agent's job, say) goes too.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def output(self) -> str:
        """What this run of the child has written (its log keeps earlier runs too)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def last_lines(self, n: int = 5) -> str:
        return "\n".join(self.output().splitlines()[-n:])


class Supervisor:
    """Starts children one by one, waits for each to be healthy, stops them in reverse order."""

    def __init__(self, grace: float = 10.0) -> None:
        self.children: list[Child] = []
        self.grace = grace

    def start(
        self,
        child: Child,
        healthy: Callable[[], bool],
        timeout: float,
        hint: str,
    ) -> None:
        self.children.append(child)
        child.start()
        deadline = time.monotonic() + timeout
        while not healthy():
            code = child.exit_code()
            if code is not None:
                raise StackError(
                    f"the {child.name} exited with code {code} while starting ({hint}); "
                    f"see {child.log_path}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"the {child.name} was not healthy after {timeout:g} s ({hint}); "
                    f"see {child.log_path}"
                )
            time.sleep(0.1)

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if c.exit_code() is not None), None)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop(self.grace)
