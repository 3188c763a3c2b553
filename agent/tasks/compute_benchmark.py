"""Matmul throughput (GFLOP/s) per size and precision: torch on a GPU when asked, else NumPy.

The experiment asks for a GPU with `device` ("cuda", "mps", "gpu" or "auto") in task or framework
params; framework `pytorch` without a device means "auto". `cpu`, or no GPU, runs NumPy, and the
output says which backend ran and why.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent.tasks import _memory, _torch, progress, register
from agent.tasks._numpy_info import numpy_hardware_info
from agent.tasks._timings import Timings
from agent.tasks.base import Task, TaskCapability, TaskOutput, repeat_for
from common.models import ExperimentSpec, PrecisionType, TaskType
from common.params import ComputeParams
from common.requirements import (
    CPU_DEVICES,
    compute_device,
    cpu_matmul_bytes,
    estimate,
)

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
Case = tuple[int, PrecisionType]


@register
class ComputeBenchmark(Task[ComputeParams]):
    task_type = TaskType.COMPUTE_BENCHMARK

    def capability(self) -> TaskCapability:
        base = super().capability()
        # pytorch is accepted everywhere (NumPy runs without a GPU) but only runs where one is.
        runs = ["numpy", "pytorch"] if _torch.probe().available else ["numpy"]
        return base.model_copy(update={"frameworks": runs})

    def guard(self, spec: ExperimentSpec, params: ComputeParams) -> None:
        # Without torch the job runs NumPy on the CPU: refused here, before its process starts.
        # With torch, whether a GPU is there is asked in the job's process (_numpy_run guards).
        if compute_device(spec, params) in CPU_DEVICES or not _torch.torch_installed():
            _guard_host(params)

    def execute(self, spec: ExperimentSpec, params: ComputeParams) -> TaskOutput:
        requested = compute_device(spec, params)
        if requested in CPU_DEVICES:
            return _numpy_run(params, requested, None)
        try:
            torch, device = _torch.select_device(requested, params.device_index)
        except LookupError as exc:
            return _numpy_run(params, requested, f"{exc}; ran with NumPy on the CPU instead")
        return _torch_run(params, requested, torch, device)


def _guard_host(params: ComputeParams) -> None:
    sizes = ", ".join(str(n) for n in dict.fromkeys(params.matrix_sizes))
    precisions = ", ".join(p.value for p in dict.fromkeys(params.precision_types))
    what = f"matrix_sizes [{sizes}] in {precisions} hold three matrices per case at once"
    _memory.require_host_memory(cpu_matmul_bytes(params), what)


def _numpy_run(params: ComputeParams, requested: str, fallback: str | None) -> TaskOutput:
    _guard_host(params)
    precisions = [p for p in dict.fromkeys(params.precision_types) if p in NUMPY_DTYPES]
    cases = [(n, p) for n in dict.fromkeys(params.matrix_sizes) for p in precisions]
    progress.log.info(
        "matmul with NumPy on the CPU: %d cases, at least %g s%s",
        len(cases),
        params.min_duration_seconds,
        f" ({fallback})" if fallback else "",
    )
    progress.report("preparing the matrices", 0.0)
    operands = {case: _operands(*case) for case in cases}
    timings = {case: Timings() for case in cases}
    weights = _weights(cases)

    def sweep() -> None:
        for case, (a, b, out) in operands.items():
            progress.report(_case_name(*case), weights[case])
            np.matmul(a, b, out=out)  # warm-up: caches, BLAS thread pool
            for _ in range(params.iterations):
                start = time.perf_counter()
                np.matmul(a, b, out=out)
                timings[case].add(time.perf_counter() - start)

    rounds = repeat_for(params.min_duration_seconds, sweep)
    skipped = [
        {"precision": p.value, "reason": SKIP_REASONS.get(p, "not supported by NumPy")}
        for p in dict.fromkeys(params.precision_types)
        if p not in NUMPY_DTYPES
    ]
    rows = [_summary(n, p, np.dtype(NUMPY_DTYPES[p]).name, timings[(n, p)]) for n, p in cases]
    _log_rows(rows, rounds)
    output: dict[str, Any] = {
        "framework": "numpy",
        "backend": "numpy",
        "device_requested": requested,
    }
    if fallback:
        output["backend_note"] = fallback
    output |= {"rounds": rounds, "results": rows, "skipped": skipped}
    return TaskOutput(
        output=output,
        metrics=_metrics(rows),
        hardware_info=numpy_hardware_info(),
        framework_version=np.__version__,
    )


def _torch_run(params: ComputeParams, requested: str, torch: Any, device: str) -> TaskOutput:
    _memory.require_device_memory(
        estimate(params, on_gpu=True).gpu_bytes,
        _torch.free_memory(torch, device),
        device,
        "the largest matmul case holds three matrices on the device",
    )
    precisions = list(dict.fromkeys(params.precision_types))
    sizes = list(dict.fromkeys(params.matrix_sizes))
    skipped: dict[tuple[PrecisionType, int | None], str] = {
        (p, None): reason for p in precisions if (reason := _torch.unsupported(torch, device, p))
    }
    timings: dict[Case, Timings] = {}
    weights = _weights([(n, p) for n in sizes for p in precisions])
    progress.log.info(
        "matmul with torch on %s: %d cases, at least %g s",
        device,
        len(weights),
        params.min_duration_seconds,
    )

    def sweep() -> None:
        for n in sizes:
            for precision in precisions:
                if (precision, None) in skipped or (precision, n) in skipped:
                    continue
                progress.report(f"{_case_name(n, precision)} on {device}", weights[(n, precision)])
                try:
                    seconds = _torch.matmul_seconds(
                        torch, device, precision, n, params.iterations, warmup=1
                    )
                except (RuntimeError, ValueError, TypeError) as exc:
                    skipped[(precision, n)] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    continue
                finally:
                    _torch.release(torch, device)
                timings.setdefault((n, precision), Timings()).extend(seconds)

    rounds = repeat_for(params.min_duration_seconds, sweep)
    rows = [_summary(n, p, _torch.DTYPE_NAMES[p], s) for (n, p), s in timings.items()]
    _log_rows(rows, rounds)
    output = {
        "framework": "pytorch",
        "backend": f"torch-{device.split(':')[0]}",
        "device_requested": requested,
        "device": device,
        "rounds": rounds,
        "results": rows,
        "skipped": [
            {"precision": p.value, **({"matrix_size": n} if n else {}), "reason": why}
            for (p, n), why in skipped.items()
        ],
    }
    return TaskOutput(
        output=output,
        metrics=_metrics(rows),
        hardware_info=_torch.device_info(torch, device),
        framework_version=torch.__version__,
    )


def _case_name(n: int, precision: PrecisionType) -> str:
    return f"matmul {n} {precision.value}"


def _weights(cases: list[Case]) -> dict[Case, float]:
    """The fraction of a sweep done when each case starts: a case costs n^3 multiply-adds."""
    total = sum(n**3 for n, _ in cases)
    starts: dict[Case, float] = {}
    done = 0
    for n, precision in cases:
        starts[(n, precision)] = done / total if total else 0.0
        done += n**3
    return starts


def _log_rows(rows: list[dict[str, Any]], rounds: int) -> None:
    for row in rows:
        progress.log.info(
            "matmul %d %s: %.1f GFLOP/s best, %.1f mean (%d multiplies, %d rounds)",
            row["matrix_size"],
            row["precision"],
            row["gflops_best"],
            row["gflops_mean"],
            row["iterations"],
            rounds,
        )


def _operands(n: int, precision: PrecisionType) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    dtype = NUMPY_DTYPES[precision]
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return a, b, np.empty((n, n), dtype=dtype)


def _summary(n: int, precision: PrecisionType, dtype: str, seconds: Timings) -> dict[str, Any]:
    flop = 2.0 * n**3  # n^2 dot products of length n: n multiplies and n adds each
    best, mean = seconds.best, seconds.mean
    return {
        "matrix_size": n,
        "precision": precision.value,
        "dtype": dtype,
        "iterations": seconds.count,
        "seconds_best": best,
        "seconds_mean": mean,
        "gflops_best": flop / best / 1e9,
        "gflops_mean": flop / mean / 1e9,
    }


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        f"gflops_{r['precision']}_{r['matrix_size']}": r["gflops_best"] for r in rows
    }
    if rows:
        metrics["peak_gflops"] = max(r["gflops_best"] for r in rows)
    return metrics
