"""Guards before allocation: a job whose arrays would not fit in memory is refused up front."""

from __future__ import annotations

import psutil

from agent.tasks.base import TaskError
from common.requirements import memory_shortfall


def require_host_memory(needed_bytes: int, what: str) -> None:
    """TaskError when `needed_bytes` do not fit in the memory available now (with headroom)."""
    reason = memory_shortfall(needed_bytes, psutil.virtual_memory().available)
    if reason is not None:
        raise TaskError(f"{what}: {reason}")


def require_device_memory(
    needed_bytes: int, free_bytes: int | None, device: str, what: str
) -> None:
    """TaskError when `needed_bytes` do not fit in the free memory of `device` (when known)."""
    if free_bytes is None:
        return
    reason = memory_shortfall(needed_bytes, free_bytes, f"memory on {device}")
    if reason is not None:
        raise TaskError(f"{what}: {reason}")
