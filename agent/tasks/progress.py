"""What a running task tells the people following its job: its stage, the fraction done, log lines.

A task calls `report("matmul 2048 fp32", 0.45)` as it goes and writes its own lines to `log`.
Parts of the work (`part`, `scaled`) name and scale what is reported inside them, so a run of
several repeats reads `matmul 2048 fp32, run 3 of 5` with the fraction of the whole job. In the
job's process the agent installs where reports go (`set_sink`); anywhere else they go nowhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# The task's own lines ("matmul 2048 fp32: 41.7 GFLOP/s"); they end up in the job's log.
log = logging.getLogger("ruckus.task")

Sink = Callable[[str, float | None], None]
Scale = Callable[[float | None], float | None]


@dataclass(frozen=True)
class _Part:
    label: str | None
    scale: Scale


_sink: Sink | None = None
_parts: list[_Part] = []


def set_sink(sink: Sink | None) -> None:
    """Where reports go from now on (the job's process sets it; None: nowhere)."""
    global _sink
    _sink = sink


def report(stage: str, progress: float | None = None) -> None:
    """Say what the task is doing now and, when it knows, the fraction of it done (0..1)."""
    if _sink is None:
        return
    for part in reversed(_parts):
        if part.label:
            stage = f"{stage}, {part.label}"
        progress = part.scale(progress)
    if progress is not None:
        progress = min(max(progress, 0.0), 1.0)
    _sink(stage, progress)


@contextlib.contextmanager
def scaled(label: str | None, scale: Scale) -> Iterator[None]:
    """A part of the work: reports inside it gain `label` and have their fraction `scale`d."""
    _parts.append(_Part(label, scale))
    try:
        yield
    finally:
        _parts.pop()


def part(
    index: int, count: int, label: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Part `index` (from 1) of `count` equal parts: its fractions fill its share of the whole."""

    def scale(done: float | None) -> float:
        return (index - 1 + (done or 0.0)) / count

    return scaled(label, scale)


def fraction(done: float, total: float) -> float | None:
    """`done` of `total` as a fraction, None when there is nothing to count."""
    return done / total if total > 0 else None
