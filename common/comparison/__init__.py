"""Comparisons of jobs across agents (or experiments on one agent), and their reports."""

from common.comparison.compute import MixedComparisonError, build_comparison, run_values
from common.comparison.metrics import metric_column
from common.comparison.model import (
    CellStats,
    Comparison,
    ComparisonRow,
    FailedJob,
    GpuSummary,
    Hardware,
    MetricColumn,
)

__all__ = [
    "CellStats",
    "Comparison",
    "ComparisonRow",
    "FailedJob",
    "GpuSummary",
    "Hardware",
    "MetricColumn",
    "MixedComparisonError",
    "build_comparison",
    "metric_column",
    "run_values",
]
