"""The child process of one job: start it, wait for it against a deadline, stop it for real."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

KILL_GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL
# How long the output of an ended process may still take to arrive: a process it started and
# left behind could hold the pipe open for ever.
OUTPUT_GRACE_SECONDS = 2.0

Process = asyncio.subprocess.Process


async def spawn(spec_path: Path, outcome_path: Path, progress_path: Path) -> Process:
    """Start `python -m agent.task_process`; its stdout and stderr come through one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.task_process",
        str(spec_path),
        str(outcome_path),
        str(progress_path),
        str(os.getpid()),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Lines reach the job's log as they are printed, not when a buffer fills.
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, so a stop reaches all of it
    )


async def wait(process: Process, stop: asyncio.Event, timeout: float) -> str:
    """'exited' when the process ended by itself, 'stop' when asked to, else 'timeout'."""
    exited = asyncio.ensure_future(process.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        exited.cancel()
        stopped.cancel()
    if exited in done:
        return "exited"
    return "stop" if stopped in done else "timeout"


async def stop(process: Process) -> None:
    """SIGTERM, then SIGKILL after a grace period; returns once the process is reaped."""
    send(process, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        send(process, signal.SIGKILL)
        await process.wait()


def send(process: Process, sig: signal.Signals) -> None:
    if process.returncode is not None:
        return  # reaped: its pid may belong to someone else by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def drain_output(output: asyncio.Task[None]) -> None:
    """Let the rest of a job's output arrive, within a grace period."""
    try:
        await asyncio.wait_for(asyncio.shield(output), OUTPUT_GRACE_SECONDS)
    except TimeoutError:
        output.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await output
