"""The first job of `ruckus dev`: a small compute benchmark, watched live to its end, once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from common.models import ExperimentSpec, JobInfo, TaskSpec, TaskType
from ruckus.follow import follow_job
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
    """Create the demo experiment and run one job of it, shown live; on a later start, point
    at the demo job that ran before instead of adding another."""
    earlier = _earlier_demo_job(client)
    if earlier is not None:
        console.print(
            f"the demo ran before: reusing experiment [bold]{DEMO_EXPERIMENT.id}[/] and its "
            f"job [bold]{earlier.job_id}[/] ({earlier.status.status.value}); no new demo job",
            soft_wrap=True,
        )
        job = earlier
    else:
        try:
            client.create_experiment(DEMO_EXPERIMENT)
        except RuckusAPIError as err:
            if err.status_code != 409:  # created by an earlier run whose job is gone
                raise
        job = JobInfo.model_validate(client.submit_job(DEMO_EXPERIMENT.id, agent_id))
        console.print(f"submitted demo job [bold]{job.job_id}[/] to agent {agent_id}")
        job = follow_job(client, job.job_id, console)
    for what, url in (
        ("job in the console:    ", f"{cfg.console_url}#/jobs/{job.job_id}"),
        ("job in the API:        ", f"{cfg.api_url}/api/v1/jobs/{job.job_id}"),
        ("results in the API:    ", f"{cfg.api_url}/api/v1/results/{job.job_id}"),
        ("job in the Temporal UI:", cfg.workflow_url(job.job_id)),
    ):
        console.print(f"{what} {url}", soft_wrap=True)
    from ruckus.demo_run import run_demo_comparison  # the CLI's modules import this one

    run_demo_comparison(client, DEMO_EXPERIMENT.id, cfg, console)
    return job


def _earlier_demo_job(client: RuckusClient) -> JobInfo | None:
    """The newest job of the demo experiment, if an earlier start ran one."""
    grouped = client.list_jobs(experiment_id=DEMO_EXPERIMENT.id, limit=1)["jobs"]
    jobs = [JobInfo.model_validate(j) for js in grouped.values() for j in js]
    return max(jobs, key=lambda j: j.created_time, default=None)
