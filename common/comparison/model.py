"""The shapes of a comparison, as `GET /api/v1/runs/{id}/comparison` answers them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MetricColumn(BaseModel):
    """One numeric headline metric: its unit and which way is better (None: unknown)."""

    name: str
    unit: str | None = None
    higher_is_better: bool | None = None


class GpuSummary(BaseModel):
    name: str | None = None
    memory_total_mb: int | None = None


class Hardware(BaseModel):
    """What tells two machines apart."""

    cpu_model: str | None = None
    cores_logical: int | None = None
    memory_gb: float | None = None
    gpus: list[GpuSummary] = Field(default_factory=list)


class CellStats(BaseModel):
    """Statistics of one metric over every measured run of a row's completed jobs."""

    n: int = Field(description="How many runs the statistics cover")
    mean: float
    min: float
    max: float
    stddev: float | None = Field(description="Sample standard deviation (n-1); null when n < 2")
    ratio_to_best: float | None = Field(
        description="mean / best mean (best / mean when lower is better): 1.0 is the best row; "
        "null when the metric's direction is unknown"
    )


class FailedJob(BaseModel):
    job_id: str
    status: str
    error: str


class ComparisonRow(BaseModel):
    """One agent (or one experiment) of the comparison."""

    key: str = Field(description="The agent id (by agent) or experiment id (by experiment)")
    label: str = Field(description="A name for people, unique within the comparison")
    hardware: Hardware
    job_ids: list[str] = Field(description="Every job of the row")
    failed: list[FailedJob] = Field(description="Jobs that failed, were cancelled or timed out")
    pending: list[str] = Field(
        default_factory=list, description="Jobs that have not ended yet: not counted"
    )
    cells: dict[str, CellStats | None] = Field(
        description="By metric name; null when no completed job of the row has the metric"
    )


class Comparison(BaseModel):
    by: Literal["agent", "experiment"]
    metrics: list[MetricColumn]
    rows: list[ComparisonRow]
