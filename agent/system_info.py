"""Facts about this machine for /api/v1/info: CPU, memory, GPUs, Python and installed frameworks."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

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


def system_info() -> dict[str, Any]:
    """Slow facts are gathered once; memory is read fresh on every call."""
    memory = psutil.virtual_memory()
    return {
        **_static_facts(),
        "memory": {"total_bytes": memory.total, "available_bytes": memory.available},
    }


@functools.cache
def _static_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "os": {"system": platform.system(), "release": platform.release()},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "cpu": {
            "model": _cpu_model(),
            "architecture": platform.machine(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
        },
        "gpus": _nvidia_smi_gpus() or _torch_gpus(),
        "frameworks": installed_frameworks(),
    }


def installed_frameworks() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist, name in FRAMEWORK_DISTRIBUTIONS.items():
        try:
            found.setdefault(name, importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin" and shutil.which("sysctl"):
        result = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if result:
            return result.strip()
    return platform.processor() or platform.machine()


def _nvidia_smi_gpus() -> list[dict[str, Any]]:
    if not shutil.which("nvidia-smi"):
        return []
    fields = "index,name,memory.total,driver_version"
    out = _run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            index, name, memory_mib, driver = parts
            gpus.append(
                {
                    "index": int(index) if index.isdigit() else index,
                    "name": name,
                    "memory_total_mb": int(memory_mib) if memory_mib.isdigit() else None,
                    "driver_version": driver,
                    "source": "nvidia-smi",
                }
            )
    return gpus


def _torch_gpus() -> list[dict[str, Any]]:
    # Importing torch takes seconds, so only when it is installed and nvidia-smi found nothing.
    if importlib.util.find_spec("torch") is None:
        return []
    try:
        import torch  # type: ignore[import-not-found]

        if torch.cuda.is_available():
            return [
                {
                    "index": i,
                    "name": torch.cuda.get_device_name(i),
                    "memory_total_mb": torch.cuda.get_device_properties(i).total_memory // 2**20,
                    "source": "torch.cuda",
                }
                for i in range(torch.cuda.device_count())
            ]
        if torch.backends.mps.is_available():
            return [{"index": 0, "name": "Apple MPS", "source": "torch.mps"}]
    except Exception as exc:  # a broken GPU stack must not break /info
        logger.warning("could not query GPUs through torch: %s", exc)
    return []


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("%s failed: %s", command[0], exc)
        return None
    return done.stdout
