"""Memory bandwidth (GB/s) with NumPy, per buffer size and access pattern."""

from __future__ import annotations

import statistics
import time
from typing import Annotated, Any, Literal

import numpy as np
import psutil
from pydantic import Field

from agent.tasks import register
from agent.tasks._numpy_info import numpy_hardware_info
from agent.tasks.base import Task, TaskError, TaskOutput, TaskParams, repeat_for
from common.models import ExperimentSpec, FrameworkName, TaskType

Pattern = Literal["sequential", "random"]
MB = 1024 * 1024


class MemoryParams(TaskParams):
    test_sizes_mb: list[Annotated[float, Field(gt=0, le=65536)]] = Field(
        default_factory=lambda: [16.0, 64.0], min_length=1
    )
    test_patterns: list[Pattern] = Field(
        default_factory=lambda: ["sequential", "random"], min_length=1
    )
    iterations_per_size: int = Field(default=3, ge=1, le=10_000)


@register
class MemoryBenchmark(Task[MemoryParams]):
    task_type = TaskType.MEMORY_BENCHMARK
    params_model = MemoryParams
    frameworks = frozenset({FrameworkName.NUMPY})
    fallback_frameworks = frozenset({FrameworkName.PYTORCH, FrameworkName.UNKNOWN})

    def execute(self, spec: ExperimentSpec, params: MemoryParams) -> TaskOutput:
        sizes = list(dict.fromkeys(params.test_sizes_mb))
        patterns = list(dict.fromkeys(params.test_patterns))
        # Source, destination and (random) an int64 index array of the same length.
        needed = 3 * max(sizes) * MB
        available = psutil.virtual_memory().available
        if needed > available:
            raise TaskError(
                f"a {max(sizes):g} MB test needs about {needed / MB:.0f} MB of free memory; "
                f"{available / MB:.0f} MB are available"
            )
        timings: dict[tuple[float, str], list[float]] = {
            (s, p): [] for s in sizes for p in patterns
        }

        def sweep() -> None:
            for size in sizes:
                count = max(1, int(size * MB) // 8)
                src = np.arange(count, dtype=np.float64)
                dst = np.empty_like(src)
                index = np.random.default_rng(count).permutation(count)
                for pattern in patterns:
                    timings[(size, pattern)].extend(
                        _measure(pattern, src, dst, index, params.iterations_per_size)
                    )

        rounds = repeat_for(params.min_duration_seconds, sweep)
        results = [_summary(size, pattern, timings[(size, pattern)]) for size, pattern in timings]
        metrics: dict[str, Any] = {
            f"bandwidth_gbps_{r['pattern']}_{r['size_mb']:g}mb": r["gbps_best"] for r in results
        }
        for pattern in patterns:
            metrics[f"peak_{pattern}_gbps"] = max(
                r["gbps_best"] for r in results if r["pattern"] == pattern
            )
        return TaskOutput(
            output={
                "framework": "numpy",
                "rounds": rounds,
                "bytes_counted": "bytes read plus bytes written of the data (index reads excluded)",
                "results": results,
            },
            metrics=metrics,
            hardware_info=numpy_hardware_info(),
            framework_version=np.__version__,
        )


def _measure(
    pattern: str, src: np.ndarray, dst: np.ndarray, index: np.ndarray, iterations: int
) -> list[float]:
    seconds = []
    for i in range(iterations + 1):
        start = time.perf_counter()
        if pattern == "sequential":
            np.copyto(dst, src)
        else:
            np.take(src, index, out=dst)
        if i:  # the first pass is a warm-up (page faults on first touch of dst)
            seconds.append(time.perf_counter() - start)
    return seconds


def _summary(size_mb: float, pattern: str, seconds: list[float]) -> dict[str, Any]:
    moved = 2 * max(1, int(size_mb * MB) // 8) * 8
    best, mean = min(seconds), statistics.fmean(seconds)
    return {
        "size_mb": size_mb,
        "pattern": pattern,
        "iterations": len(seconds),
        "seconds_best": best,
        "seconds_mean": mean,
        "gbps_best": moved / best / 1e9,
        "gbps_mean": moved / mean / 1e9,
    }
