"""Measured seconds kept as count, sum and best: memory stays constant however long a task runs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Timings:
    """What a summary row needs of many timed calls, without keeping each one."""

    count: int = 0
    total: float = 0.0
    best: float = math.inf

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.best = min(self.best, seconds)

    def extend(self, seconds: Iterable[float]) -> None:
        for value in seconds:
            self.add(value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan
