"""GPU memory bandwidth (GB/s) and matmul throughput (TFLOP/s) per precision, with torch."""

from __future__ import annotations

from typing import Any

from agent.tasks import _memory, _torch, progress, register
from agent.tasks._timings import Timings
from agent.tasks.base import Task, TaskCapability, TaskError, TaskOutput, repeat_for
from common.models import ExperimentSpec, PrecisionType, TaskType
from common.params import GpuParams
from common.requirements import estimate

MB = 1024 * 1024
BYTES_COUNTED = (
    "d2d counts bytes read plus bytes written on the device; h2d and d2h count bytes transferred"
)


@register
class GpuBenchmark(Task[GpuParams]):
    task_type = TaskType.GPU_BENCHMARK

    def capability(self) -> TaskCapability:
        found = _torch.probe()
        base = super().capability()
        return base.model_copy(update={"available": found.available, "reason": found.reason})

    def guard(self, spec: ExperimentSpec, params: GpuParams) -> None:
        # Cheap enough for the agent process; whether torch sees a GPU is asked in the job's.
        if not _torch.torch_installed():
            raise TaskError(_torch.NO_TORCH)
        largest = max(params.memory_sizes_mb, default=0)
        what = f"the {largest:g} MB copy test pins that much host memory"
        _memory.require_host_memory(estimate(params, on_gpu=True).host_bytes, what)

    def execute(self, spec: ExperimentSpec, params: GpuParams) -> TaskOutput:
        try:
            torch, device = _torch.select_device(params.device, params.device_index)
        except LookupError as exc:
            raise TaskError(str(exc)) from exc
        _memory.require_device_memory(
            estimate(params, on_gpu=True).gpu_bytes,
            _torch.free_memory(torch, device),
            device,
            "the largest matmul case or copy test on the device",
        )
        precisions = list(dict.fromkeys(params.precision_types))
        sizes = list(dict.fromkeys(params.matrix_sizes))
        memory_sizes = list(dict.fromkeys(params.memory_sizes_mb))
        # Why a precision (for every size), one matmul case, or one copy size was not measured.
        skipped_precisions = {
            p: reason for p in precisions if (reason := _torch.unsupported(torch, device, p))
        }
        skipped_cases: dict[tuple[PrecisionType, int], str] = {}
        skipped_memory: dict[float, str] = {}
        matmul: dict[tuple[PrecisionType, int], Timings] = {}
        copies: dict[tuple[str, float], Timings] = {}
        # Where each part of a sweep starts, by its rough cost in seconds on a modest GPU:
        # 1 TFLOP/s for matmuls, 10 GB/s for the three copies of a size (host transfers lead).
        steps: list[tuple[PrecisionType | None, float, float]] = [
            (p, n, 2.0 * n**3 / 1e12) for p in precisions for n in sizes
        ]
        steps += [(None, mb, 3 * mb * MB / 1e10) for mb in memory_sizes]
        total = sum(cost for _, _, cost in steps)
        starts: dict[tuple[PrecisionType | None, float], float | None] = {}
        done = 0.0
        for precision, size, cost in steps:
            starts[(precision, size)] = done / total if total else None
            done += cost
        progress.log.info(
            "GPU benchmark on %s: %d matmul cases, %d copy sizes, at least %g s",
            device,
            len(precisions) * len(sizes),
            len(memory_sizes),
            params.min_duration_seconds,
        )

        def sweep() -> None:
            for precision in precisions:
                for n in sizes:
                    if precision in skipped_precisions or (precision, n) in skipped_cases:
                        continue
                    stage = f"matmul {n} {precision.value} on {device}"
                    progress.report(stage, starts[(precision, n)])
                    try:
                        seconds = _torch.matmul_seconds(
                            torch, device, precision, n, params.iterations, params.warmup_iterations
                        )
                    except (RuntimeError, ValueError, TypeError) as exc:
                        # Support tables are not complete: a kernel the device lacks is skipped.
                        skipped_cases[(precision, n)] = _first_line(exc)
                        continue
                    finally:
                        _torch.release(torch, device)
                    matmul.setdefault((precision, n), Timings()).extend(seconds)
            for size_mb in memory_sizes:
                if size_mb in skipped_memory:
                    continue
                progress.report(f"copy {size_mb:g} MB on {device}", starts[(None, size_mb)])
                try:
                    found = _torch.copy_seconds(
                        torch,
                        device,
                        int(size_mb * MB),
                        params.memory_iterations,
                        params.warmup_iterations,
                    )
                except RuntimeError as exc:  # out of device or pinned memory
                    skipped_memory[size_mb] = _first_line(exc)
                    continue
                finally:
                    _torch.release(torch, device)
                for kind, seconds in found.items():
                    copies.setdefault((kind, size_mb), Timings()).extend(seconds)

        rounds = repeat_for(params.min_duration_seconds, sweep)
        skipped = [{"precision": p.value, "reason": why} for p, why in skipped_precisions.items()]
        skipped += [
            {"precision": p.value, "matrix_size": n, "reason": why}
            for (p, n), why in skipped_cases.items()
        ]
        skipped += [{"memory_size_mb": mb, "reason": why} for mb, why in skipped_memory.items()]
        if not matmul and not copies:
            reasons = "; ".join(f"{s.get('precision', 'copy')}: {s['reason']}" for s in skipped)
            raise TaskError(f"nothing could be measured on {device}: {reasons}")
        matmul_rows = [_matmul_row(p, n, s) for (p, n), s in matmul.items()]
        memory_rows = [_copy_row(kind, mb, s) for (kind, mb), s in copies.items()]
        for row in matmul_rows:
            progress.log.info(
                "matmul %d %s: %.2f TFLOP/s best, %.2f mean (%d multiplies)",
                row["matrix_size"],
                row["precision"],
                row["tflops_best"],
                row["tflops_mean"],
                row["iterations"],
            )
        for row in memory_rows:
            progress.log.info(
                "copy %s %g MB: %.2f GB/s best, %.2f mean (%d copies)",
                row["copy"],
                row["size_mb"],
                row["gbps_best"],
                row["gbps_mean"],
                row["iterations"],
            )
        return TaskOutput(
            output={
                "framework": "pytorch",
                "device": device,
                "rounds": rounds,
                "matmul": matmul_rows,
                "memory": memory_rows,
                "bytes_counted": BYTES_COUNTED,
                "skipped": skipped,
            },
            metrics=_metrics(matmul_rows, memory_rows),
            hardware_info=_torch.device_info(torch, device),
            framework_version=torch.__version__,
        )


def _matmul_row(precision: PrecisionType, n: int, seconds: Timings) -> dict[str, Any]:
    flop = 2.0 * n**3
    best, mean = seconds.best, seconds.mean
    return {
        "precision": precision.value,
        "matrix_size": n,
        "dtype": _torch.DTYPE_NAMES[precision],
        "iterations": seconds.count,
        "seconds_best": best,
        "seconds_mean": mean,
        "tflops_best": flop / best / 1e12,
        "tflops_mean": flop / mean / 1e12,
    }


def _copy_row(kind: str, size_mb: float, seconds: Timings) -> dict[str, Any]:
    size = int(size_mb * MB)
    moved = 2 * size if kind == "d2d" else size
    best, mean = seconds.best, seconds.mean
    return {
        "copy": kind,
        "size_mb": size_mb,
        "iterations": seconds.count,
        "seconds_best": best,
        "seconds_mean": mean,
        "gbps_best": moved / best / 1e9,
        "gbps_mean": moved / mean / 1e9,
    }


def _metrics(matmul: list[dict[str, Any]], memory: list[dict[str, Any]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for row in matmul:
        metrics[f"tflops_{row['precision']}_{row['matrix_size']}"] = row["tflops_best"]
        peak = f"peak_tflops_{row['precision']}"
        metrics[peak] = max(metrics.get(peak, 0.0), row["tflops_best"])
    for row in memory:
        metrics[f"{row['copy']}_gbps_{row['size_mb']:g}mb"] = row["gbps_best"]
        peak = f"peak_{row['copy']}_gbps"
        metrics[peak] = max(metrics.get(peak, 0.0), row["gbps_best"])
    return metrics


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
