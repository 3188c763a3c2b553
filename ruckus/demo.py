"""The first job of `ruckus dev`: a small compute benchmark, watched live to its end."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from common.models import ExperimentSpec, JobInfo, TaskSpec, TaskType
from ruckus.http_client import RuckusAPIError, RuckusClient

if TYPE_CHECKING:
    from ruckus.dev import DevConfig

DEMO_EXPERIMENT = ExperimentSpec(
    id="demo-compute-benchmark",
    name="Demo: matrix multiply throughput",
    description="A small NumPy matmul benchmark that runs in seconds on any machine.",
    model="none",
    task=TaskSpec(
        name="matmul",
        type=TaskType.COMPUTE_BENCHMARK,
        params={"matrix_sizes": [256, 512], "precision_types": ["fp32", "fp64"]},
    ),
)


def run_demo(client: RuckusClient, agent_id: str, cfg: DevConfig, console: Console) -> JobInfo:
    """Create the demo experiment (once), submit a job, show it live, print its results."""
    try:
        client.create_experiment(DEMO_EXPERIMENT)
    except RuckusAPIError as err:
        if err.status_code != 409:  # created by an earlier run
            raise
    job = client.submit_job(DEMO_EXPERIMENT.id, agent_id)
    console.print(f"submitted demo job [bold]{job.job_id}[/] to agent {agent_id}")
    job = watch_job(client, job.job_id, console)
    if job.status.status.value == "completed":
        print_result(client.get_result(job.job_id), console)
    for what, url in (
        ("job in the API:        ", f"{cfg.api_url}/api/v1/jobs/{job.job_id}"),
        ("results in the API:    ", f"{cfg.api_url}/api/v1/results/{job.job_id}"),
        ("job in the Temporal UI:", cfg.workflow_url(job.job_id)),
    ):
        console.print(f"{what} {url}", soft_wrap=True)
    return job


def watch_job(
    client: RuckusClient, job_id: str, console: Console, interval: float = 0.5
) -> JobInfo:
    """Show the job's status as it changes until it ends."""
    last = None
    with console.status(f"job {job_id}") as status:
        while True:
            job = client.get_job(job_id)
            seen = (job.status.status, job.status.message)
            if seen != last:
                last = seen
                console.print(f"  {job.status.status.value:<10} {job.status.message}")
                status.update(f"job {job_id}: {job.status.status.value}")
            if job.status.status.is_terminal:
                return job
            time.sleep(interval)


def print_result(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"results of {result.get('job_id')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in _flatten(result.get("metrics") or {}):
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if result.get("duration_seconds") is not None:
        console.print(f"duration: {result['duration_seconds']:.2f} s")


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == "repeats":  # per-run detail: `ruckus results show --json` has it
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        elif not isinstance(value, list):
            rows.append((name, value))
    return rows[:40]
