"""Memory bandwidth (GB/s) with NumPy, per buffer size and access pattern."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent.tasks import _memory, progress, register
from agent.tasks._numpy_info import numpy_hardware_info
from agent.tasks._timings import Timings
from agent.tasks.base import Task, TaskOutput, repeat_for
from common.models import ExperimentSpec, TaskType
from common.params import MemoryParams
from common.requirements import memory_benchmark_bytes

MB = 1024 * 1024


@register
class MemoryBenchmark(Task[MemoryParams]):
    task_type = TaskType.MEMORY_BENCHMARK

    def guard(self, spec: ExperimentSpec, params: MemoryParams) -> None:
        what = (
            f"the {max(params.test_sizes_mb):g} MB test holds a source, a destination and an "
            "index of that size in free memory"
        )
        _memory.require_host_memory(memory_benchmark_bytes(params), what)

    def execute(self, spec: ExperimentSpec, params: MemoryParams) -> TaskOutput:
        sizes = list(dict.fromkeys(params.test_sizes_mb))
        patterns = list(dict.fromkeys(params.test_patterns))
        timings = {(s, p): Timings() for s in sizes for p in patterns}
        total = sum(sizes) * len(patterns)
        progress.log.info(
            "memory bandwidth with NumPy: sizes %s MB, patterns %s, at least %g s",
            ", ".join(f"{size:g}" for size in sizes),
            ", ".join(patterns),
            params.min_duration_seconds,
        )

        def sweep() -> None:
            done = 0.0
            for size in sizes:
                progress.report(f"preparing {size:g} MB buffers", progress.fraction(done, total))
                count = max(1, int(size * MB) // 8)
                src = np.arange(count, dtype=np.float64)
                dst = np.empty_like(src)
                index = np.random.default_rng(count).permutation(count)
                for pattern in patterns:
                    progress.report(f"copy {size:g} MB {pattern}", progress.fraction(done, total))
                    done += size
                    timings[(size, pattern)].extend(
                        _measure(pattern, src, dst, index, params.iterations_per_size)
                    )
                # Freed before the next size is allocated: the guard counts three buffers.
                del src, dst, index

        rounds = repeat_for(params.min_duration_seconds, sweep)
        results = [_summary(size, pattern, timings[(size, pattern)]) for size, pattern in timings]
        for r in results:
            progress.log.info(
                "copy %g MB %s: %.2f GB/s best, %.2f mean (%d copies, %d rounds)",
                r["size_mb"],
                r["pattern"],
                r["gbps_best"],
                r["gbps_mean"],
                r["iterations"],
                rounds,
            )
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


def _summary(size_mb: float, pattern: str, seconds: Timings) -> dict[str, Any]:
    moved = 2 * max(1, int(size_mb * MB) // 8) * 8
    best, mean = seconds.best, seconds.mean
    return {
        "size_mb": size_mb,
        "pattern": pattern,
        "iterations": seconds.count,
        "seconds_best": best,
        "seconds_mean": mean,
        "gbps_best": moved / best / 1e9,
        "gbps_mean": moved / mean / 1e9,
    }
