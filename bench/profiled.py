"""Runs a module as `python -m` would, under cProfile switched by signals.

`python -m bench.profiled OUT MODULE ARGS...`: SIGUSR1 starts profiling the main thread (where
the event loop runs), SIGUSR2 stops it and writes the stats to OUT.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import runpy
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType


def main() -> None:
    out, module, *rest = sys.argv[1:]
    sys.argv = [module, *rest]
    profile = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profile.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profile.disable()
        # Whole or absent: the benchmark reads it once it exists.
        profile.dump_stats(out + ".part")
        Path(out + ".part").replace(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


async def written(path: Path, timeout: float = 60) -> None:
    """Wait for the profile a SIGUSR2 asked for."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(path.exists):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no profile at {path}")
        await asyncio.sleep(0.2)


def profile_summary(path: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float, float]]]:
    """Share of the worker's profiled main-thread time by area (own time), and the Ruckus
    functions with the most time under them: (name, frame entries, share); a coroutine's
    frame is entered again at each resume, so entries are not calls."""
    if not path.exists():
        return [], []
    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, name), (_, _, tottime, _, _) in entries.items():
        by_area[area(filename, name)] += tottime
        total += tottime
    if not total:
        return [], []
    ordered = sorted(by_area.items(), key=lambda kv: -kv[1])
    areas = [(k, v / total * 100) for k, v in ordered[:12]]
    ours = [
        (f"{Path(filename).parent.name}/{Path(filename).name}:{name}", calls, cumtime)
        for (filename, _, name), (_, calls, _, cumtime, _) in entries.items()
        if any(f"/{d}/" in filename for d in ("workflows", "activities", "common"))
    ]
    ours.sort(key=lambda e: -e[2])
    window = stats.total_tt or total  # type: ignore[attr-defined]
    calls = [(name, n, cum / window * 100) for name, n, cum in ours[:12]]
    return areas, calls


AREAS = (
    ("temporalio/worker/_workflow_instance", "SDK: running workflow activations"),
    ("temporalio/worker/_workflow", "SDK: workflow worker"),
    ("temporalio/worker/_activity", "SDK: activities"),
    ("temporalio/converter", "SDK: payload conversion"),
    ("temporalio/bridge", "SDK: bridge to the core"),
    ("temporalio", "SDK: other"),
    ("google/protobuf", "protobuf"),
    ("httpx", "httpx"),
    ("httpcore", "httpcore"),
    ("h11", "h11"),
    ("sqlalchemy", "SQLAlchemy"),
    ("aiosqlite", "aiosqlite"),
    ("pydantic", "pydantic"),
    ("asyncio", "asyncio"),
    ("/workflows/", "Ruckus workflows"),
    ("/activities/", "Ruckus activities"),
    ("/common/", "Ruckus common"),
)


def area(filename: str, name: str) -> str:
    for needle, label in AREAS:
        if needle in filename:
            return label
    if filename == "~":
        return f"builtins ({name.split(' of ')[0].strip('<>')[:40]})"
    return "other Python"


if __name__ == "__main__":
    main()
