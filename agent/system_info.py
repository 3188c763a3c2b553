"""The one place that reads this machine: /api/v1/info's system_info and each result's hardware.

Slow facts (CPU model, GPUs, installed frameworks) are gathered once per process; memory, disk
and GPU memory in use are read fresh for /api/v1/info. GPUs come from NVML (`nvidia-ml-py`),
else `nvidia-smi`, else torch; nothing is reported that the machine did not say.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import logging
import platform
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from common.machine import CpuDetails, FrameworkDetails, GpuDetails, SystemDetails, SystemInfo

logger = logging.getLogger(__name__)

GB = 1024**3
MB = 1024**2

# Distribution name -> the name reported; only installed ones are listed.
FRAMEWORK_DISTRIBUTIONS = {
    "numpy": "numpy",
    "torch": "pytorch",
    "transformers": "transformers",
    "vllm": "vllm",
    "tensorrt": "tensorrt",
    "onnxruntime": "onnx",
    "onnxruntime-gpu": "onnx",
    "tritonclient": "triton",
    "openai": "openai",
    "jax": "jax",
}

# The first NVIDIA compute capability with each precision in hardware (CUDA programming guide);
# fp64 and fp32 run on every CUDA GPU.
PRECISION_SINCE = (
    ((0, 0), "fp64"),
    ((0, 0), "fp32"),
    ((5, 3), "fp16"),
    ((6, 1), "int8"),
    ((8, 0), "tf32"),
    ((8, 0), "bf16"),
    ((8, 9), "fp8"),
)


def system_info(disk_path: Path | None = None) -> SystemInfo:
    """The contract's layout; `disk_path` picks the disk reported (the agent's data dir)."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(_existing(disk_path)))
    uname = platform.uname()
    return SystemInfo(
        system=SystemDetails(
            hostname=socket.gethostname(),
            os=uname.system or "Unknown",
            os_version=uname.version,
            kernel=uname.release,
            python_version=platform.python_version(),
            total_memory_gb=memory.total / GB,
            available_memory_gb=memory.available / GB,
            disk_total_gb=disk.total / GB,
            disk_available_gb=disk.free / GB,
        ),
        cpu=_cpu(),
        gpus=_gpus_now(),
        frameworks=list(_frameworks()),
    )


@functools.cache
def hardware_info() -> dict[str, Any]:
    """What tells two machines apart in a comparison; attached to every job result."""
    cpu, system = _cpu(), platform.uname()
    return {
        "hostname": socket.gethostname(),
        "os": f"{system.system} {system.release}".strip(),
        "cpu": {
            "model": cpu.model,
            "architecture": cpu.architecture,
            "cores_physical": cpu.cores_physical,
            "cores_logical": cpu.cores_logical,
        },
        "memory_total_gb": round(psutil.virtual_memory().total / GB, 2),
        "gpus": [
            {"name": g.name, "memory_total_mb": g.memory_total_mb, "vendor": g.vendor}
            for g in _gpus()
        ],
        "frameworks": {f.name: f.version for f in _frameworks()},
        "python_version": platform.python_version(),
    }


def installed_frameworks() -> dict[str, str]:
    """Installed frameworks by reported name -> version."""
    found: dict[str, str] = {}
    for dist, name in FRAMEWORK_DISTRIBUTIONS.items():
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.setdefault(name, importlib.metadata.version(dist))
    return found


def supported_precisions(compute_capability: tuple[int, int] | None) -> list[str]:
    if compute_capability is None:
        return []
    return [name for since, name in PRECISION_SINCE if compute_capability >= since]


@functools.cache
def _frameworks() -> tuple[FrameworkDetails, ...]:
    torch_devices = _torch_devices(_gpus())
    return tuple(
        FrameworkDetails(
            name=name,
            version=version,
            capabilities=torch_devices if name == "pytorch" else {},
        )
        for name, version in installed_frameworks().items()
    )


def _torch_devices(gpus: tuple[GpuDetails, ...]) -> dict[str, bool]:
    """torch's CUDA and MPS support, when the GPUs were found through torch (else unknown)."""
    methods = {(g.model_extra or {}).get("detection_method") for g in gpus}
    if not methods & {"pytorch_cuda", "pytorch_mps"}:
        return {}
    return {"cuda": "pytorch_cuda" in methods, "mps": "pytorch_mps" in methods}


@functools.cache
def _cpu() -> CpuDetails:
    frequency = None
    with contextlib.suppress(Exception):  # psutil raises on some virtual machines
        if (freq := psutil.cpu_freq()) is not None and freq.current > 0:
            frequency = round(float(freq.current), 1)
    return CpuDetails(
        model=_cpu_model(),
        cores_physical=psutil.cpu_count(logical=False),
        cores_logical=psutil.cpu_count(logical=True),
        frequency_mhz=frequency if frequency is not None else _cpuinfo_mhz(),
        architecture=platform.machine().lower() or "unknown",
    )


def _cpuinfo_lines() -> Iterator[str]:
    cpuinfo = Path("/proc/cpuinfo")
    with contextlib.suppress(OSError):
        yield from cpuinfo.read_text(errors="replace").splitlines()


def _cpu_model() -> str:
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin" and shutil.which("sysctl"):
        result = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if result:
            return result.strip()
    return platform.processor() or platform.machine() or "unknown"


def _cpuinfo_mhz() -> float | None:
    for line in _cpuinfo_lines():
        if line.startswith("cpu MHz"):
            with contextlib.suppress(ValueError):
                return round(float(line.split(":", 1)[1]), 1)
    return None


@functools.cache
def _gpus() -> tuple[GpuDetails, ...]:
    return tuple(_nvml_gpus() or _nvidia_smi_gpus() or _torch_gpus())


def _gpus_now() -> list[GpuDetails]:
    """The GPUs with the memory available right now, where a cheap source says it."""
    gpus = [g.model_copy() for g in _gpus()]
    free = _nvml_free_memory_mb()
    for gpu in gpus:
        if gpu.index in free:
            gpu.memory_available_mb = free[gpu.index]
    return gpus


def _nvml() -> Any | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception as exc:  # no driver, or no NVIDIA GPU
        logger.debug("NVML is not usable: %s", exc)
        return None
    return pynvml


def _nvml_gpus() -> list[GpuDetails]:
    nvml = _nvml()
    if nvml is None:
        return []
    gpus = []
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            cc = tuple(nvml.nvmlDeviceGetCudaComputeCapability(handle))
            gpus.append(
                GpuDetails(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    vendor="nvidia",
                    memory_total_mb=memory.total // MB,
                    memory_available_mb=memory.free // MB,
                    compute_capability=f"{cc[0]}.{cc[1]}",
                    supported_precisions=supported_precisions((int(cc[0]), int(cc[1]))),
                    driver_version=driver,
                    detection_method="pynvml",
                )
            )
    except Exception as exc:
        logger.warning("could not query GPUs through NVML: %s", exc)
        return []
    return gpus


def _nvml_free_memory_mb() -> dict[int, int]:
    nvml = _nvml()
    if nvml is None:
        return {}
    try:
        count = nvml.nvmlDeviceGetCount()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        return {i: nvml.nvmlDeviceGetMemoryInfo(h).free // MB for i, h in enumerate(handles)}
    except Exception:
        return {}


def _nvidia_smi_gpus() -> list[GpuDetails]:
    if not shutil.which("nvidia-smi"):
        return []
    fields = "index,name,uuid,memory.total,memory.free,driver_version"
    out = _run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 6 or not parts[0].isdigit():
            continue
        index, name, uuid, total, free, driver = parts
        gpus.append(
            GpuDetails(
                index=int(index),
                name=name,
                uuid=uuid or None,
                vendor="nvidia",
                memory_total_mb=int(total) if total.isdigit() else None,
                memory_available_mb=int(free) if free.isdigit() else None,
                driver_version=driver,
                detection_method="nvidia_smi",
            )
        )
    return gpus


def _torch_gpus() -> list[GpuDetails]:
    # Importing torch takes seconds, so only when it is installed and nothing else found a GPU.
    if importlib.util.find_spec("torch") is None:
        return []
    try:
        import torch  # type: ignore[import-not-found]

        if torch.cuda.is_available():
            gpus = []
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                free, total = torch.cuda.mem_get_info(i)
                cc = (int(props.major), int(props.minor))
                gpus.append(
                    GpuDetails(
                        index=i,
                        name=props.name,
                        uuid=str(getattr(props, "uuid", "") or "") or None,
                        vendor="amd" if getattr(torch.version, "hip", None) else "nvidia",
                        memory_total_mb=total // MB,
                        memory_available_mb=free // MB,
                        compute_capability=f"{cc[0]}.{cc[1]}",
                        supported_precisions=supported_precisions(cc),
                        detection_method="pytorch_cuda",
                    )
                )
            return gpus
        if torch.backends.mps.is_available():
            # MPS tells no device name or memory size of its own.
            name, method = "Apple MPS", "pytorch_mps"
            return [GpuDetails(index=0, name=name, vendor="apple", detection_method=method)]
    except Exception as exc:  # a broken GPU stack must not break /info
        logger.warning("could not query GPUs through torch: %s", exc)
    return []


def _existing(path: Path | None) -> Path:
    """The nearest existing folder at or above `path` (the root when none is given)."""
    if path is None:
        return Path("/")
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("%s failed: %s", command[0], exc)
        return None
    return done.stdout
