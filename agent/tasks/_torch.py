"""Optional torch: whether a GPU is usable, and timed GPU kernels shared by the GPU-aware tasks.

torch is never imported at module level: the agent runs its other tasks without it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from common.models import PrecisionType

NO_TORCH = "no GPU available: torch is not installed (the agent's optional `gpu` extra)"
GPU_DEVICES = ("cuda", "mps")

# The dtype each precision multiplies in; tf32 is fp32 with tensor-core rounding switched on.
DTYPE_NAMES: dict[PrecisionType, str] = {
    PrecisionType.FP64: "float64",
    PrecisionType.FP32: "float32",
    PrecisionType.TF32: "float32",
    PrecisionType.FP16: "float16",
    PrecisionType.BF16: "bfloat16",
    PrecisionType.FP8: "float8_e4m3fn",
}


@dataclass(frozen=True)
class GpuProbe:
    """torch (when it imports) and the GPU device type it sees, or why there is none."""

    torch: Any | None
    device: str | None
    reason: str | None

    @property
    def available(self) -> bool:
        return self.device is not None


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@functools.cache
def probe() -> GpuProbe:
    """Import torch once and ask it for CUDA, then MPS."""
    if not torch_installed():
        return GpuProbe(None, None, NO_TORCH)
    try:
        import torch  # type: ignore[import-not-found]
    except Exception as exc:  # a broken install (missing CUDA libraries) leaves no GPU either
        message = f"no GPU available: torch is installed but does not import ({exc})"
        return GpuProbe(None, None, message)
    if torch.cuda.is_available():
        return GpuProbe(torch, "cuda", None)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return GpuProbe(torch, "mps", None)
    built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    message = "no GPU available: torch sees no CUDA or MPS device"
    return GpuProbe(torch, None, f"{message} (torch {torch.__version__}, {built})")


def select_device(requested: str, index: int) -> tuple[Any, str]:
    """(torch, "cuda:N" or "mps") for a request of auto, gpu, cuda or mps; else a reason.

    Raises LookupError with a message for the user when that device is not there.
    """
    found = probe()
    if found.device is None:
        raise LookupError(found.reason)
    if requested not in ("auto", "gpu", found.device):
        raise LookupError(
            f"no GPU available: device '{requested}' was requested and torch sees only "
            f"{found.device}"
        )
    torch = found.torch
    if found.device == "cuda":
        count = torch.cuda.device_count()
        if index >= count:
            raise LookupError(
                f"no GPU available: device index {index} was requested and torch sees "
                f"{count} CUDA device{'s' if count != 1 else ''}"
            )
        # CUDA events record on the current device's stream: make it the measured one.
        torch.cuda.set_device(index)
        return torch, f"cuda:{index}"
    return torch, "mps"


def device_info(torch: Any, device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"device": device, "torch_version": torch.__version__}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info |= {
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_total_mb": props.total_memory // 2**20,
            "multiprocessors": props.multi_processor_count,
            "cuda_version": torch.version.cuda,
        }
        if getattr(torch.version, "hip", None):
            info["hip_version"] = torch.version.hip
    elif device == "mps":
        info["name"] = "Apple MPS"
    return info


def free_memory(torch: Any, device: str) -> int | None:
    """Bytes the device can still give a job, or None when torch cannot tell."""
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    mps = getattr(torch, "mps", None)
    limit = getattr(mps, "recommended_max_memory", None)
    used = getattr(mps, "driver_allocated_memory", None)
    if device == "mps" and callable(limit) and callable(used):
        return max(0, int(limit()) - int(used()))
    return None


def capability(torch: Any, device: str) -> tuple[int, int] | None:
    if not device.startswith("cuda"):
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def unsupported(torch: Any, device: str, precision: PrecisionType) -> str | None:
    """Why this device cannot multiply in `precision`, or None when it can (as far as known)."""
    cc = capability(torch, device)
    shown = f"{cc[0]}.{cc[1]}" if cc else device
    if precision not in DTYPE_NAMES:
        return f"{precision.value} matmul is not measured by this agent"
    if precision is PrecisionType.TF32:
        if cc is None:
            return f"tf32 is an NVIDIA tensor-core mode; this device is {device}"
        if cc < (8, 0):
            return f"tf32 needs compute capability 8.0 or newer; this GPU has {shown}"
    if precision is PrecisionType.BF16 and cc is not None and cc < (8, 0):
        return f"bf16 needs compute capability 8.0 or newer; this GPU has {shown}"
    if precision is PrecisionType.FP64 and device == "mps":
        return "MPS has no float64"
    if precision is PrecisionType.FP8:
        if cc is None:
            return f"fp8 matmul (torch._scaled_mm) needs an NVIDIA GPU; this device is {device}"
        if not hasattr(torch, "float8_e4m3fn") or not hasattr(torch, "_scaled_mm"):
            return f"torch {torch.__version__} has no float8_e4m3fn or _scaled_mm"
        if cc < (8, 9):
            return f"fp8 needs compute capability 8.9 or newer; this GPU has {shown}"
    return None


def synchronize(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    elif device == "mps":
        torch.mps.synchronize()


def time_each(torch: Any, device: str, op: Callable[[], Any], iterations: int) -> list[float]:
    """Seconds per call of `op`: CUDA events on CUDA, synchronise-and-clock elsewhere."""
    synchronize(torch, device)
    if device.startswith("cuda"):
        pairs = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(iterations)
        ]
        for start, end in pairs:
            start.record()
            op()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) / 1e3 for start, end in pairs]
    seconds = []
    for _ in range(iterations):
        start_time = time.perf_counter()
        op()
        synchronize(torch, device)
        seconds.append(time.perf_counter() - start_time)
    return seconds


@contextlib.contextmanager
def tf32_matmul(torch: Any, enabled: bool) -> Iterator[None]:
    """fp32 matmuls on tensor cores (tf32) or in full fp32, restored afterwards."""
    matmul = torch.backends.cuda.matmul
    # The legacy switch (allow_tf32) works on every torch; newer ones warn that it will give way
    # to fp32_precision and refuse to read it once something set the new one, so fall back then.
    name, value = "allow_tf32", enabled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            before = matmul.allow_tf32
        except RuntimeError:
            name, value = "fp32_precision", "tf32" if enabled else "ieee"
            before = matmul.fp32_precision
        setattr(matmul, name, value)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            setattr(matmul, name, before)


def matmul_seconds(
    torch: Any,
    device: str,
    precision: PrecisionType,
    n: int,
    iterations: int,
    warmup: int,
) -> list[float]:
    """Seconds per n x n matrix multiply in `precision`, after `warmup` untimed ones."""
    if precision is PrecisionType.FP8:
        if n % 16:
            raise ValueError("fp8 matmul needs sizes that are multiples of 16")
        fp8 = torch.float8_e4m3fn
        a = torch.randn(n, n, device=device).to(fp8)
        # cuBLASLt wants the second operand column-major: the transpose of a row-major matrix.
        b = torch.randn(n, n, device=device).to(fp8).t()
        scale = torch.tensor(1.0, device=device)

        def op() -> Any:
            return torch._scaled_mm(a, b, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16)

    else:
        dtype = getattr(torch, DTYPE_NAMES[precision])
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)

        def op() -> Any:
            return torch.matmul(a, b, out=out)

    with tf32_matmul(torch, precision is PrecisionType.TF32):
        for _ in range(warmup):
            op()
        return time_each(torch, device, op, iterations)


def copy_seconds(
    torch: Any, device: str, size_bytes: int, iterations: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per copy of `size_bytes`: device to device, host to device, device to host."""
    src = torch.ones(size_bytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    # Pinned host memory is what fast transfers use; MPS shares memory and has no pinning.
    host = torch.empty(size_bytes, dtype=torch.uint8, pin_memory=device.startswith("cuda"))
    host.fill_(1)
    ops: dict[str, Callable[[], Any]] = {
        "d2d": lambda: dst.copy_(src),
        "h2d": lambda: dst.copy_(host, non_blocking=True),
        "d2h": lambda: host.copy_(src, non_blocking=True),
    }
    seconds = {}
    for name, op in ops.items():
        for _ in range(warmup):
            op()
        seconds[name] = time_each(torch, device, op, iterations)
    return seconds


def release(torch: Any, device: str) -> None:
    """Give cached GPU memory back between cases, so a big case does not starve the next."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device == "mps":
        with contextlib.suppress(AttributeError):
            torch.mps.empty_cache()
