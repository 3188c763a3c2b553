"""The end of `ruckus dev`'s demo: a run of its experiment on every agent, and the comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from ruckus.http_client import RuckusClient
from ruckus.runs_cli import show_comparison, watch_run

if TYPE_CHECKING:
    from ruckus.dev import DevConfig

DEMO_REPEATS = 2


def run_demo_comparison(
    client: RuckusClient, experiment_id: str, cfg: DevConfig, console: Console
) -> str:
    """Run the experiment twice on every registered agent and show its comparison, once: on a
    later start, point at that run instead. The run's id."""
    earlier = client.list_runs(experiment_id)
    if earlier:
        run_id = str(earlier[0]["run_id"])
        console.print(
            f"the demo's comparison ran before: run [bold]{run_id}[/] ({earlier[0]['status']})",
            soft_wrap=True,
        )
    else:
        run_id = str(client.start_run(experiment_id, [], {}, DEMO_REPEATS)["run_id"])
        console.print(
            f"\n[bold]A comparison[/]: run [bold]{run_id}[/] runs the demo {DEMO_REPEATS} times "
            "on every agent; fp32 against fp64 at two sizes, agents side by side",
            soft_wrap=True,
        )
        watch_run(client, run_id, console)
        show_comparison(client.comparison(run_id, None, None), console)
    for what, url in (
        ("run in the console:    ", f"{cfg.console_url}#/runs/{run_id}"),
        ("run in the API:        ", f"{cfg.api_url}/api/v1/runs/{run_id}"),
        ("comparison report:     ", f"{cfg.api_url}/api/v1/runs/{run_id}/report"),
        ("run in the Temporal UI:", cfg.workflow_url(run_id)),
    ):
        console.print(f"{what} {url}", soft_wrap=True)
    return run_id
