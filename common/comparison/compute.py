"""A comparison from stored jobs, their results and their agents: no I/O, plain arithmetic."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from common.comparison.hardware import hardware_of
from common.comparison.metrics import metric_column
from common.comparison.model import (
    CellStats,
    Comparison,
    ComparisonRow,
    FailedJob,
    MetricColumn,
)
from common.models import FAILED_JOB_STATUSES, JobInfo, JobStatusEnum, RegisteredAgentInfo

REPEATS_KEY = "repeats"


class MixedComparisonError(ValueError):
    """The jobs are of several experiments on several agents: no one axis to compare along."""


def build_comparison(
    jobs: Sequence[JobInfo],
    results: Mapping[str, Mapping[str, Any]],
    agents: Mapping[str, RegisteredAgentInfo],
    experiment_names: Mapping[str, str] | None = None,
) -> Comparison:
    """Rows by agent (one experiment) or by experiment (one agent), in the jobs' order.

    `results` holds the stored result of each job that has one, by job id; `agents` the
    registered agents by id (an agent no longer registered is described by its results).
    """
    by = _axis(jobs)
    groups: dict[str, list[JobInfo]] = {}
    for job in jobs:
        groups.setdefault(job.agent_id if by == "agent" else job.experiment_id, []).append(job)

    samples = {key: _samples(group, results) for key, group in groups.items()}
    names = list(dict.fromkeys(name for per_key in samples.values() for name in per_key))
    columns = [metric_column(name) for name in names]
    cells = {key: {n: _stats(values.get(n, [])) for n in names} for key, values in samples.items()}
    for column in columns:
        _set_ratios(column, [cells[key][column.name] for key in groups])

    labels = _labels(by, groups, agents, experiment_names or {})
    rows = [
        ComparisonRow(
            key=key,
            label=labels[key],
            hardware=hardware_of(
                agents.get(group[0].agent_id), [results.get(j.job_id) for j in group]
            ),
            job_ids=[job.job_id for job in group],
            failed=[
                _failure(job, results.get(job.job_id))
                for job in group
                if _failed(job, results.get(job.job_id))
            ],
            pending=[job.job_id for job in group if not job.status.status.is_terminal],
            cells=cells[key],
        )
        for key, group in groups.items()
    ]
    return Comparison(by=by, metrics=columns, rows=rows)


def run_values(result: Mapping[str, Any], name: str) -> list[float]:
    """The measured values of one metric in one job's result.

    With repeated runs, the warm runs (the task's headline is their mean; run 1 is the cold
    start, kept apart by the task); with one run, its value.
    """
    metrics = result.get("metrics")
    if not isinstance(metrics, Mapping):
        return []
    repeats = metrics.get(REPEATS_KEY)
    raw = repeats.get("raw") if isinstance(repeats, Mapping) else None
    if isinstance(raw, Mapping) and isinstance(raw.get(name), list):
        per_run = raw[name]
        measured = per_run[1:] if len(per_run) > 1 else per_run
        return [float(v) for v in measured if _is_number(v)]
    value = metrics.get(name)
    return [float(value)] if _is_number(value) else []


def _axis(jobs: Sequence[JobInfo]) -> Literal["agent", "experiment"]:
    experiments = {job.experiment_id for job in jobs}
    if len(experiments) <= 1:
        return "agent"
    if len({job.agent_id for job in jobs}) == 1:
        return "experiment"
    raise MixedComparisonError(
        f"the jobs are of {len(experiments)} experiments on several agents: compare one "
        "experiment across agents, or several experiments on one agent"
    )


def _samples(
    group: Sequence[JobInfo], results: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[float]]:
    """Every measured value of every headline metric, over the group's completed jobs."""
    values: dict[str, list[float]] = {}
    for job in group:
        result = results.get(job.job_id)
        if job.status.status is not JobStatusEnum.COMPLETED or result is None:
            continue
        metrics = result.get("metrics")
        for name in metrics if isinstance(metrics, Mapping) else ():
            if name != REPEATS_KEY and (measured := run_values(result, name)):
                values.setdefault(name, []).extend(measured)
    return values


def _stats(values: Sequence[float]) -> CellStats | None:
    if not values:
        return None
    return CellStats(
        n=len(values),
        mean=statistics.fmean(values),
        min=min(values),
        max=max(values),
        stddev=statistics.stdev(values) if len(values) > 1 else None,
        ratio_to_best=None,
    )


def _set_ratios(column: MetricColumn, cells: Sequence[CellStats | None]) -> None:
    """ratio_to_best on each cell of one metric: the best row is 1.0."""
    present = [cell for cell in cells if cell is not None]
    if column.higher_is_better is None or not present:
        return
    if column.higher_is_better:
        best = max(cell.mean for cell in present)
        for cell in present:
            cell.ratio_to_best = cell.mean / best if best > 0 else None
    else:
        best = min(cell.mean for cell in present)
        for cell in present:
            cell.ratio_to_best = best / cell.mean if best > 0 else None


def _failed(job: JobInfo, result: Mapping[str, Any] | None) -> bool:
    """Failed, cancelled or timed out; or completed with nothing stored to count."""
    status = job.status.status
    return status in FAILED_JOB_STATUSES or (status is JobStatusEnum.COMPLETED and result is None)


def _failure(job: JobInfo, result: Mapping[str, Any] | None) -> FailedJob:
    error = (result or {}).get("error")
    if result is None and job.status.status is JobStatusEnum.COMPLETED:
        error = "the job completed but no results are stored for it"
    return FailedJob(
        job_id=job.job_id,
        status=job.status.status.value,
        error=str(error) if error else job.status.message or job.status.status.value,
    )


def _labels(
    by: str,
    groups: Mapping[str, Sequence[JobInfo]],
    agents: Mapping[str, RegisteredAgentInfo],
    experiment_names: Mapping[str, str],
) -> dict[str, str]:
    """A readable name per row; the id is added where two rows would read the same."""
    names = {
        key: (
            (agents[key].agent_name if key in agents else None)
            if by == "agent"
            else experiment_names.get(key)
        )
        or key
        for key in groups
    }
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {
        key: name if counts[name] == 1 or name == key else f"{name} ({key})"
        for key, name in names.items()
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
