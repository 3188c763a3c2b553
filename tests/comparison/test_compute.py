"""The comparison's statistics against numbers worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.comparison import (
    MixedComparisonError,
    build_comparison,
    metric_column,
)
from common.models import JobInfo, JobStatus, JobStatusEnum, RegisteredAgentInfo

T0 = datetime(2025, 5, 1, tzinfo=UTC)


def job(
    job_id: str, agent: str, status: str = "completed", exp: str = "exp-1", msg: str = ""
) -> JobInfo:
    return JobInfo(
        job_id=job_id,
        experiment_id=exp,
        agent_id=agent,
        created_time=T0 + timedelta(seconds=len(job_id)),
        status=JobStatus(status=JobStatusEnum(status), message=msg),
    )


def result(job_id: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "experiment_id": "exp-1",
        "status": "completed",
        "metrics": metrics,
        **extra,
    }


def repeated(headline: dict[str, float], raw: dict[str, list[Any]]) -> dict[str, Any]:
    return {**headline, "repeats": {"runs": len(next(iter(raw.values()))), "raw": raw}}


def agent(agent_id: str, name: str | None = None, **system_info: Any) -> RegisteredAgentInfo:
    return RegisteredAgentInfo(
        agent_id=agent_id, agent_name=name, agent_url="http://x", system_info=system_info
    )


JOBS = [
    job("job_a1", "A"),
    job("job_a2", "A"),
    job("job_b1", "B"),
    job("job_b2", "B"),
    job("job_c1", "C", "failed", msg="agent said failed"),
    job("job_c2", "C", "cancelled", msg="cancelled by request"),
    job("job_c3", "C", "running"),
]
RESULTS = {
    # Three runs each: run 1 is the cold start, runs 2 and 3 are measured.
    "job_a1": result(
        "job_a1",
        repeated(
            {"gflops_fp32_256": 12.0, "e2e_latency_seconds": 2.0, "widgets": 3.0},
            {
                "gflops_fp32_256": [5.0, 10.0, 14.0],
                "e2e_latency_seconds": [9.0, 2.0, 2.0],
                "widgets": [1.0, 3.0, 3.0],
            },
        ),
    ),
    "job_a2": result(
        "job_a2",
        repeated(
            {"gflops_fp32_256": 14.0, "e2e_latency_seconds": 4.0},
            {"gflops_fp32_256": [6.0, 12.0, 16.0], "e2e_latency_seconds": [9.0, 4.0, 4.0]},
        ),
    ),
    # One run recorded by the task; then a result from an older agent with no repeats block.
    "job_b1": result(
        "job_b1",
        repeated(
            {"gflops_fp32_256": 26.0, "e2e_latency_seconds": 1.0},
            {"gflops_fp32_256": [26.0], "e2e_latency_seconds": [1.0]},
        ),
    ),
    "job_b2": result(
        "job_b2",
        {
            "gflops_fp32_256": 13.0,
            "note": "warm",
            "ok": True,
            "loss": float("nan"),
            "nested": {"x": 1},
        },
    ),
    "job_c1": result("job_c1", {}, status="failed", error="out of memory"),
}
AGENTS = {"A": agent("A", "laptop"), "B": agent("B", "server")}


def test_cells_hold_the_statistics_of_every_measured_run() -> None:
    comparison = build_comparison(JOBS, RESULTS, AGENTS)
    assert comparison.by == "agent"
    assert [r.key for r in comparison.rows] == ["A", "B", "C"]
    assert [m.name for m in comparison.metrics] == [
        "gflops_fp32_256",
        "e2e_latency_seconds",
        "widgets",
    ]
    a, b, _ = comparison.rows

    # A: warm runs 10, 14, 12, 16 -> mean 13; squared deviations 9+1+1+9 = 20, /3, sqrt.
    cell = a.cells["gflops_fp32_256"]
    assert cell is not None
    assert (cell.n, cell.mean, cell.min, cell.max) == (4, 13.0, 10.0, 16.0)
    assert cell.stddev == pytest.approx(math.sqrt(20 / 3))
    # B: 26 (its single run) and 13 (headline of a result without repeats): mean 19.5.
    cell_b = b.cells["gflops_fp32_256"]
    assert cell_b is not None
    assert (cell_b.n, cell_b.mean, cell_b.min, cell_b.max) == (2, 19.5, 13.0, 26.0)
    assert cell_b.stddev == pytest.approx(math.sqrt(2 * 6.5**2))
    # Higher is better: mean / best mean.
    assert cell.ratio_to_best == pytest.approx(13 / 19.5)
    assert cell_b.ratio_to_best == 1.0


def test_lower_is_better_ratio_is_best_over_mean() -> None:
    a, b, _ = build_comparison(JOBS, RESULTS, AGENTS).rows
    latency_a, latency_b = a.cells["e2e_latency_seconds"], b.cells["e2e_latency_seconds"]
    assert latency_a is not None and latency_b is not None
    assert (latency_a.n, latency_a.mean, latency_a.stddev) == (
        4,
        3.0,
        pytest.approx(math.sqrt(4 / 3)),
    )
    assert latency_b.n == 1 and latency_b.stddev is None
    assert latency_a.ratio_to_best == pytest.approx(1 / 3)
    assert latency_b.ratio_to_best == 1.0


def test_unknown_metric_has_no_unit_direction_or_ratio() -> None:
    comparison = build_comparison(JOBS, RESULTS, AGENTS)
    widgets = next(m for m in comparison.metrics if m.name == "widgets")
    assert (widgets.unit, widgets.higher_is_better) == (None, None)
    a, b, _ = comparison.rows
    assert a.cells["widgets"] is not None and a.cells["widgets"].ratio_to_best is None
    assert b.cells["widgets"] is None


def test_failed_jobs_are_listed_with_their_error_never_as_zeros() -> None:
    c = build_comparison(JOBS, RESULTS, AGENTS).rows[2]
    assert c.job_ids == ["job_c1", "job_c2", "job_c3"]
    assert [(f.job_id, f.status, f.error) for f in c.failed] == [
        ("job_c1", "failed", "out of memory"),
        ("job_c2", "cancelled", "cancelled by request"),
    ]
    assert c.pending == ["job_c3"]
    assert c.cells == {"gflops_fp32_256": None, "e2e_latency_seconds": None, "widgets": None}


def test_a_completed_job_without_results_is_reported_not_counted() -> None:
    comparison = build_comparison([job("job_x", "A")], {}, AGENTS)
    (row,) = comparison.rows
    assert comparison.metrics == []
    assert [(f.job_id, f.status) for f in row.failed] == [("job_x", "completed")]
    assert "no results" in row.failed[0].error


def test_several_experiments_on_one_agent_compare_by_experiment() -> None:
    jobs = [job("job_1", "A", exp="small"), job("job_2", "A", exp="big")]
    results = {
        "job_1": result("job_1", {"peak_gflops": 10.0}),
        "job_2": result("job_2", {"peak_gflops": 40.0}),
    }
    comparison = build_comparison(jobs, results, AGENTS, {"small": "Small", "big": "Big"})
    assert comparison.by == "experiment"
    assert [(r.key, r.label) for r in comparison.rows] == [("small", "Small"), ("big", "Big")]
    ratios = [r.cells["peak_gflops"].ratio_to_best for r in comparison.rows]  # type: ignore[union-attr]
    assert ratios == [0.25, 1.0]


def test_several_experiments_on_several_agents_is_refused() -> None:
    with pytest.raises(MixedComparisonError, match="one experiment across agents"):
        build_comparison([job("job_1", "A", exp="x"), job("job_2", "B", exp="y")], {}, AGENTS)


def test_labels_are_unique() -> None:
    agents = {"A": agent("A", "gpu box"), "B": agent("B", "gpu box"), "C": agent("C")}
    jobs = [job("job_1", "A"), job("job_2", "B"), job("job_3", "C")]
    labels = [r.label for r in build_comparison(jobs, {}, agents).rows]
    assert labels == ["gpu box (A)", "gpu box (B)", "C"]


@pytest.mark.parametrize(
    ("name", "unit", "higher"),
    [
        ("gflops_fp32_512", "GFLOP/s", True),
        ("peak_gflops", "GFLOP/s", True),
        ("peak_tflops_bf16", "TFLOP/s", True),
        ("bandwidth_gbps_sequential_64mb", "GB/s", True),
        ("peak_random_gbps", "GB/s", True),
        ("h2d_gbps_256mb", "GB/s", True),
        ("tokens_per_second", "tokens/s", True),
        ("decode_tokens_per_second", "tokens/s", True),
        ("ttft_seconds", "s", False),
        ("itl_p99_seconds", "s", False),
        ("e2e_latency_seconds", "s", False),
        ("output_tokens", "tokens", None),
        ("accuracy", None, None),
    ],
)
def test_units_and_directions_of_the_tasks_metrics(
    name: str, unit: str | None, higher: bool | None
) -> None:
    column = metric_column(name)
    assert (column.unit, column.higher_is_better) == (unit, higher)
