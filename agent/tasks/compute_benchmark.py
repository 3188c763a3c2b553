"""Matrix-multiply throughput (GFLOP/s) with NumPy, per matrix size and precision."""

from __future__ import annotations

import statistics
import time
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from agent.tasks import register
from agent.tasks._numpy_info import numpy_hardware_info
from agent.tasks.base import Task, TaskOutput, TaskParams, repeat_for
from common.models import ExperimentSpec, FrameworkName, PrecisionType, TaskType

NUMPY_DTYPES: dict[PrecisionType, type[np.floating[Any]]] = {
    PrecisionType.FP64: np.float64,
    PrecisionType.FP32: np.float32,
    PrecisionType.FP16: np.float16,
}
SKIP_REASONS: dict[PrecisionType, str] = {
    PrecisionType.TF32: "tf32 is a GPU tensor-core mode; NumPy has no such type",
    PrecisionType.BF16: "NumPy has no bfloat16 type",
    PrecisionType.INT8: "NumPy integer matmul bypasses BLAS, so it is no throughput measure",
    PrecisionType.FP8: "NumPy has no fp8 type",
}


class ComputeParams(TaskParams):
    matrix_sizes: list[Annotated[int, Field(gt=0, le=16384)]] = Field(
        default_factory=lambda: [256, 512], min_length=1
    )
    precision_types: list[PrecisionType] = Field(
        default_factory=lambda: [PrecisionType.FP32, PrecisionType.FP64], min_length=1
    )
    iterations: int = Field(default=3, ge=1, le=10_000)


@register
class ComputeBenchmark(Task[ComputeParams]):
    task_type = TaskType.COMPUTE_BENCHMARK
    params_model = ComputeParams
    frameworks = frozenset({FrameworkName.NUMPY})
    fallback_frameworks = frozenset({FrameworkName.PYTORCH, FrameworkName.UNKNOWN})

    def execute(self, spec: ExperimentSpec, params: ComputeParams) -> TaskOutput:
        precisions = [p for p in dict.fromkeys(params.precision_types) if p in NUMPY_DTYPES]
        cases = [(n, p) for n in dict.fromkeys(params.matrix_sizes) for p in precisions]
        operands = {case: _operands(*case) for case in cases}
        timings: dict[tuple[int, PrecisionType], list[float]] = {case: [] for case in cases}

        def sweep() -> None:
            for case, (a, b, out) in operands.items():
                np.matmul(a, b, out=out)  # warm-up: caches, BLAS thread pool
                for _ in range(params.iterations):
                    start = time.perf_counter()
                    np.matmul(a, b, out=out)
                    timings[case].append(time.perf_counter() - start)

        rounds = repeat_for(params.min_duration_seconds, sweep)
        results = [_summary(n, p, timings[(n, p)]) for n, p in cases]
        skipped = [
            {"precision": p.value, "reason": SKIP_REASONS.get(p, "not supported by NumPy")}
            for p in dict.fromkeys(params.precision_types)
            if p not in NUMPY_DTYPES
        ]
        metrics: dict[str, Any] = {
            f"gflops_{r['precision']}_{r['matrix_size']}": r["gflops_best"] for r in results
        }
        if results:
            metrics["peak_gflops"] = max(r["gflops_best"] for r in results)
        return TaskOutput(
            output={"framework": "numpy", "rounds": rounds, "results": results, "skipped": skipped},
            metrics=metrics,
            hardware_info=numpy_hardware_info(),
            framework_version=np.__version__,
        )


def _operands(n: int, precision: PrecisionType) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    dtype = NUMPY_DTYPES[precision]
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return a, b, np.empty((n, n), dtype=dtype)


def _summary(n: int, precision: PrecisionType, seconds: list[float]) -> dict[str, Any]:
    flop = 2.0 * n**3  # n^2 dot products of length n: n multiplies and n adds each
    best, mean = min(seconds), statistics.fmean(seconds)
    return {
        "matrix_size": n,
        "precision": precision.value,
        "dtype": np.dtype(NUMPY_DTYPES[precision]).name,
        "iterations": len(seconds),
        "seconds_best": best,
        "seconds_mean": mean,
        "gflops_best": flop / best / 1e9,
        "gflops_mean": flop / mean / 1e9,
    }
