"""The machine as an agent describes it: `AgentInfo.system_info` in the contract's layout."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.models import OpenModel, WireModel


class SystemDetails(WireModel):
    """`system_info.system`: the host, its OS and Python, memory and disk in GB."""

    hostname: str
    os: str
    os_version: str
    kernel: str
    python_version: str
    total_memory_gb: float
    available_memory_gb: float
    disk_total_gb: float
    disk_available_gb: float


class CpuDetails(WireModel):
    """`system_info.cpu`; a count or frequency the machine does not tell is null."""

    model: str
    cores_physical: int | None = None
    cores_logical: int | None = None
    frequency_mhz: float | None = None
    architecture: str


class GpuDetails(OpenModel):
    """One entry of `system_info.gpus`; more facts (driver, detection method) as extra keys."""

    index: int
    name: str
    uuid: str | None = None
    vendor: str = "unknown"
    memory_total_mb: int | None = None
    memory_available_mb: int | None = None
    compute_capability: str | None = None
    supported_precisions: list[str] = Field(default_factory=list)


class FrameworkDetails(WireModel):
    """One entry of `system_info.frameworks`: an installed framework and what was probed of it."""

    name: str
    version: str
    available: bool = True
    capabilities: dict[str, bool] = Field(default_factory=dict)


class SystemInfo(OpenModel):
    """`AgentInfo.system_info` in the contract's layout; anything more goes under new keys."""

    system: SystemDetails
    cpu: CpuDetails
    gpus: list[GpuDetails] = Field(default_factory=list)
    frameworks: list[FrameworkDetails] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list)
    hooks: list[dict[str, Any]] = Field(default_factory=list)
    metrics: list[dict[str, Any]] = Field(default_factory=list)
