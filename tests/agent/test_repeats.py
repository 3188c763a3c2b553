"""Repeated runs: the statistics helper on known numbers, and `runs` end to end on the agent."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest

from agent.tasks.output import TaskError, TaskOutput
from agent.tasks.repeats import NO_WARM_RUNS, combine, repeated, summarize
from tests.agent.jobs import experiment, submit, wait_for_end


def test_summarize_known_numbers() -> None:
    stats = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert stats["mean"] == 5
    assert stats["std"] == pytest.approx(math.sqrt(32 / 7))  # sample deviation: n - 1
    assert (stats["min"], stats["max"], stats["median"], stats["count"]) == (2, 9, 4.5, 8)

    single = summarize([0.25])
    assert (single["mean"], single["median"], single["count"]) == (0.25, 0.25, 1)
    assert single["std"] is None  # one value has no spread to estimate


def test_combine_reports_cold_start_warm_statistics_and_raw_values() -> None:
    runs = [
        TaskOutput(output={"n": 1}, metrics={"latency": 10.0, "tokens": None, "label": "a"}),
        TaskOutput(output={"n": 2}, metrics={"latency": 2.0, "tokens": None, "label": "b"}),
        TaskOutput(output={"n": 3}, metrics={"latency": 4.0, "tokens": None, "label": "c"}),
    ]
    combined = combine(runs)

    repeats = combined.metrics["repeats"]
    assert (repeats["runs"], repeats["warm_runs"]) == (3, 2)
    assert repeats["cold_start"] == {"latency": 10.0, "tokens": None, "label": "a"}
    assert repeats["raw"]["latency"] == [10.0, 2.0, 4.0]
    assert repeats["raw"]["tokens"] == [None, None, None]
    assert repeats["warm"] == {
        "latency": {
            "mean": 3.0,
            "std": pytest.approx(math.sqrt(2)),
            "min": 2.0,
            "max": 4.0,
            "median": 3.0,
            "count": 2,
        }
    }
    # The headline is the warm mean; what has no numbers stays as the last run reported it.
    assert combined.metrics["latency"] == 3.0
    assert combined.metrics["tokens"] is None
    assert combined.metrics["label"] == "c"
    assert combined.output == {"n": 3, "run_outputs": [{"n": 1}, {"n": 2}, {"n": 3}]}


def test_one_run_is_the_cold_start_and_says_there_are_no_warm_runs() -> None:
    combined = combine([TaskOutput(output={"n": 1}, metrics={"latency": 7.5})])

    assert combined.metrics["latency"] == 7.5
    assert combined.output == {"n": 1}
    repeats = combined.metrics["repeats"]
    assert repeats["cold_start"] == {"latency": 7.5}
    assert repeats["warm"] == {}
    assert repeats["raw"] == {"latency": [7.5]}
    assert repeats["note"] == NO_WARM_RUNS


def test_a_failing_run_fails_the_whole_job_naming_the_run() -> None:
    def outputs() -> Iterator[TaskOutput]:
        yield TaskOutput(metrics={"x": 1})
        raise TaskError("the endpoint went away")

    source = outputs()
    with pytest.raises(TaskError, match="run 2 of 3: the endpoint went away"):
        repeated(lambda: next(source), 3)


def test_runs_3_on_the_agent_line_up_counts_and_raw_values(client: httpx.Client) -> None:
    params = {"matrix_sizes": [32, 64], "precision_types": ["fp32"], "iterations": 2, "runs": 3}
    job_id = submit(client, experiment("compute_benchmark", params))

    assert wait_for_end(client, job_id)["status"] == "completed"
    result = client.get(f"/api/v1/results/{job_id}").json()
    metrics = result["metrics"]
    repeats = metrics["repeats"]
    assert (repeats["runs"], repeats["warm_runs"]) == (3, 2)
    assert set(repeats["raw"]) == {"gflops_fp32_32", "gflops_fp32_64", "peak_gflops"}
    for name, values in repeats["raw"].items():
        assert len(values) == 3 and all(v > 0 for v in values)
        assert repeats["cold_start"][name] == values[0]
        warm = repeats["warm"][name]
        assert warm["count"] == 2
        assert warm["mean"] == pytest.approx(sum(values[1:]) / 2)
        assert (warm["min"], warm["max"]) == (min(values[1:]), max(values[1:]))
        assert metrics[name] == pytest.approx(warm["mean"])
    # Each run's own output is kept, and each measured what the spec asked.
    runs = result["output"]["run_outputs"]
    assert len(runs) == 3
    for run, peak in zip(runs, repeats["raw"]["peak_gflops"], strict=True):
        assert max(r["gflops_best"] for r in run["results"]) == pytest.approx(peak)


def test_a_single_run_says_it_has_no_warm_runs(client: httpx.Client) -> None:
    job_id = submit(client, experiment("memory_benchmark", {"test_sizes_mb": [1]}))

    assert wait_for_end(client, job_id)["status"] == "completed"
    metrics = client.get(f"/api/v1/results/{job_id}").json()["metrics"]
    repeats = metrics["repeats"]
    assert repeats["runs"] == 1
    assert repeats["warm"] == {}
    assert repeats["note"] == NO_WARM_RUNS
    assert repeats["cold_start"]["peak_sequential_gbps"] == metrics["peak_sequential_gbps"]
