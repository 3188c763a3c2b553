"""Repeated runs of one task: the first run is the cold start, the others are summarised.

Every task defines a single run; `repeated` runs it `runs` times and combines the outputs:
- `metrics` keeps the task's metric names. With warm runs each numeric metric is their mean,
  with one run it is that run's value.
- `metrics["repeats"]` holds the cold start (run 1), per-metric statistics over the warm runs
  (runs 2..n) and the raw value of every run.
- `output` is the last run's output; with more than one run, `output["run_outputs"]` lists all.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agent.tasks import progress
from agent.tasks.output import TaskError, TaskOutput

REPEATS_KEY = "repeats"
NO_WARM_RUNS = "runs=1: the single run is the cold start; there are no warm runs to summarise"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """mean, std (sample, n-1; null below two values), min, max, median and count."""
    if not values:
        raise ValueError("no values to summarise")
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
        "median": statistics.median(values),
        "count": len(values),
    }


def repeated(run_once: Callable[[], TaskOutput], runs: int) -> TaskOutput:
    """Run `run_once` `runs` times and combine; a failing run fails the whole job, named."""
    outputs = []
    for index in range(1, runs + 1):
        name = f"run {index} of {runs}"
        part = progress.part(index, runs, name) if runs > 1 else contextlib.nullcontext()
        began = time.perf_counter()
        try:
            with part:
                outputs.append(run_once())
        except TaskError as exc:
            if runs == 1:
                raise
            raise TaskError(f"run {index} of {runs}: {exc}") from exc
        if runs > 1:
            progress.log.info("%s done in %.2f s", name, time.perf_counter() - began)
    return combine(outputs)


def combine(outputs: Sequence[TaskOutput]) -> TaskOutput:
    """One TaskOutput from the outputs of runs 1..n (see the module docstring)."""
    if not outputs:
        raise ValueError("no runs to combine")
    names = list(dict.fromkeys(n for o in outputs for n, v in o.metrics.items() if _flat(v)))
    raw = {name: [o.metrics.get(name) for o in outputs] for name in names}
    warm: dict[str, dict[str, float | int | None]] = {}
    for name, values in raw.items():
        numbers = [v for v in values[1:] if is_number(v)]
        if numbers:
            warm[name] = summarize(numbers)

    last = outputs[-1]
    metrics = dict(last.metrics)
    for name in names:
        if len(outputs) == 1:
            metrics[name] = raw[name][0]
        elif name in warm:
            metrics[name] = warm[name]["mean"]
    block: dict[str, Any] = {
        "runs": len(outputs),
        "warm_runs": len(outputs) - 1,
        "headline": "mean of the warm runs" if len(outputs) > 1 else "the single run",
        "cold_start": {name: raw[name][0] for name in names},
        "warm": warm,
        "raw": raw,
    }
    if len(outputs) == 1:
        block["note"] = NO_WARM_RUNS
    metrics[REPEATS_KEY] = block

    output = last.output
    if len(outputs) > 1:
        output = dict(output) if isinstance(output, dict) else {"output": output}
        output["run_outputs"] = [o.output for o in outputs]
    return TaskOutput(
        output=output,
        metrics=metrics,
        hardware_info=last.hardware_info,
        framework_version=_last_set(o.framework_version for o in outputs),
        model_actual=_last_set(o.model_actual for o in outputs),
    )


def _last_set(values: Iterable[str | None]) -> str | None:
    found = None
    for value in values:
        found = value or found
    return found


def _flat(value: Any) -> bool:
    # Scalars and nulls are per-run values; nested structures are the task's own business.
    return value is None or isinstance(value, str | int | float | bool)
