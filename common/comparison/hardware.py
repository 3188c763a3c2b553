"""The hardware of a comparison row: the agent's system_info, else what its results say."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from common.comparison.model import GpuSummary, Hardware
from common.models import RegisteredAgentInfo

GB = 1024**3


def hardware_of(
    agent: RegisteredAgentInfo | None, results: Iterable[Mapping[str, Any] | None]
) -> Hardware:
    """Field by field: the registered agent's system_info first, then each result's
    hardware_info (an agent gone from the register still has its results)."""
    sources = [agent.system_info] if agent is not None else []
    sources += [r["hardware_info"] for r in results if r and _is_map(r.get("hardware_info"))]
    found = Hardware()
    for source in sources:
        found = Hardware(
            cpu_model=found.cpu_model or _text(_at(source, "cpu", "model")),
            cores_logical=found.cores_logical or _count(_cores(source)),
            memory_gb=found.memory_gb or _memory_gb(source),
            gpus=found.gpus or _gpus(source.get("gpus")),
        )
    return found


def _cores(source: Mapping[str, Any]) -> Any:
    # The contract's name, then the names older agents and NumPy's results use.
    return (
        _at(source, "cpu", "cores_logical")
        or _at(source, "cpu", "logical_cores")
        or source.get("logical_cpus")
    )


def _memory_gb(source: Mapping[str, Any]) -> float | None:
    for value in (_at(source, "system", "total_memory_gb"), source.get("memory_total_gb")):
        if _number(value):
            return round(float(value), 2)
    total = _at(source, "memory", "total_bytes")
    return round(total / GB, 2) if _number(total) else None


def _gpus(value: Any) -> list[GpuSummary]:
    if not isinstance(value, list):
        return []
    return [
        GpuSummary(name=_text(g.get("name")), memory_total_mb=_count(g.get("memory_total_mb")))
        for g in value
        if _is_map(g)
    ]


def _at(source: Mapping[str, Any], *path: str) -> Any:
    value: Any = source
    for key in path:
        if not _is_map(value):
            return None
        value = value.get(key)
    return value


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> int | None:
    return int(value) if _number(value) and value >= 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
