"""Client commands for runs and comparisons: start, follow, compare, report."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from common.comparison import Comparison
from common.comparison.report import fmt, gpu_text, render_csv, render_html
from ruckus.client_cli import JsonOption, KeyOption, ServerOption, WideOption, _fail, ask
from ruckus.http_client import DEFAULT_SERVER_URL, RuckusAPIError, RuckusClient
from ruckus.tables import Column, show_fields, show_table, when

console = Console()

RunArgument = Annotated[
    str | None, typer.Argument(help="A run id; or compare jobs with --experiment or --job")
]
ExperimentOption = Annotated[
    str | None, typer.Option("--experiment", help="Compare every job of this experiment")
]
JobOption = Annotated[
    list[str] | None, typer.Option("--job", help="Compare these jobs (repeatable)")
]
REPORT_FORMATS = (".html", ".csv")
WATCH_INTERVAL = 0.5
ENDED = frozenset({"completed", "failed", "cancelled", "timeout"})
# Exit codes: 1 the command failed (the server's reason is printed); 2 the run was cancelled.
RUN_CANCELLED = 2

RUN_COLUMNS = [
    Column("run", whole=True),
    Column("experiment", whole=True),
    Column("status"),
    Column("agents", whole=True, drop=1),
    Column("jobs"),
    Column("created", drop=2, min_width=19),
]
RUN_JOB_COLUMNS = [
    Column("job", whole=True),
    Column("agent", whole=True),
    Column("status"),
    Column("message", drop=1),
]

runs_app = typer.Typer(
    help="Run an experiment across agents and compare them.", no_args_is_help=True
)


@runs_app.command("start")
def runs_start(
    experiment_id: str,
    agents: Annotated[
        list[str] | None, typer.Option("--agent", help="An agent to run on (repeatable)")
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option("--label", help="Only agents with this label, KEY=VALUE (repeatable)"),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="Jobs per agent")] = 1,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow each agent's jobs, then compare")
    ] = False,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Run EXPERIMENT_ID on the named agents, or on every agent that can run it."""
    selector = dict(_label(text) for text in labels or [])
    try:
        with RuckusClient(server, api_key) as client:
            run = client.start_run(experiment_id, agents or [], selector, repeats)
            if not watch:
                _print_run(run, as_json, wide)
                return
            if not as_json:
                console.print(f"run [bold]{run['run_id']}[/] started", soft_wrap=True)
            _watch(client, run["run_id"], as_json, wide)
    except RuckusAPIError as err:
        raise _fail(err) from err


@runs_app.command("watch")
def runs_watch(
    run_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Follow a run's jobs per agent until it ends, then show its comparison."""
    try:
        with RuckusClient(server, api_key) as client:
            _watch(client, run_id, as_json, wide)
    except RuckusAPIError as err:
        raise _fail(err) from err


@runs_app.command("list")
def runs_list(
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Runs, newest first."""
    runs = ask(server, api_key, lambda client: client.list_runs())
    if as_json:
        print(json.dumps({"runs": runs}, indent=2))
        return
    rows = [
        (
            run["run_id"],
            run["experiment_id"],
            run["status"],
            "\n".join(run["agents"]),
            _job_counts(run["jobs"]),
            when(run["created_time"]),
        )
        for run in runs
    ]
    show_table(console, "runs", RUN_COLUMNS, rows, wide=wide)


@runs_app.command("show")
def runs_show(
    run_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """One run and its jobs."""
    run = ask(server, api_key, lambda client: client.get_run(run_id))
    _print_run(run, as_json, wide)


@runs_app.command("cancel")
def runs_cancel(
    run_id: str,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """Cancel a run: its jobs that have not ended are cancelled."""
    try:
        with RuckusClient(server, api_key) as client:
            client.cancel_run(run_id)
    except RuckusAPIError as err:
        raise _fail(err) from err
    console.print(f"cancellation of {run_id} requested", soft_wrap=True)


def _watch(client: RuckusClient, run_id: str, as_json: bool, wide: bool) -> None:
    """Per-agent progress, live, until the run ends; then its comparison."""
    run = watch_run(client, run_id, Console(stderr=True) if as_json else console)
    comparison = client.comparison(run_id, None, None)
    if as_json:
        print(json.dumps({"run": run, "comparison": comparison.model_dump(mode="json")}, indent=2))
    else:
        show_comparison(comparison, console, wide=wide)
    if run["status"] == "cancelled":
        raise typer.Exit(RUN_CANCELLED)


def watch_run(client: RuckusClient, run_id: str, out: Console) -> dict[str, Any]:
    """Show each agent's jobs, live, until the run ends; the run as it ended."""
    with Live(console=out, refresh_per_second=4) as live:
        while True:
            run = client.get_run(run_id)
            live.update(_progress(run))
            if run["status"] != "running":
                break
            time.sleep(WATCH_INTERVAL)
    if not out.is_terminal:  # Live leaves its last line open when not on a terminal
        out.print()
    return run


def _progress(run: dict[str, Any]) -> Group:
    table = Table(title=f"run {run['run_id']}: {run['status']}")
    # Redrawn live, so never turned into blocks: the agent's id is kept whole all the same.
    longest = max((len(a) for a in run["agents"]), default=0)
    table.add_column("agent", no_wrap=True, min_width=longest)
    for column in ("done", "jobs"):
        table.add_column(column, overflow="fold")
    for agent_id in run["agents"]:
        jobs = [j for j in run["jobs"] if j["agent_id"] == agent_id]
        ended = sum(j["status"]["status"] in ENDED for j in jobs)
        table.add_row(agent_id, f"{ended}/{len(jobs)}", _job_counts(jobs))
    return Group(table)


def _job_counts(jobs: list[dict[str, Any]]) -> str:
    counts = Counter(j["status"]["status"] for j in jobs)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none yet"


def _print_run(run: dict[str, Any], as_json: bool, wide: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2))
        return
    show_fields(
        console,
        [
            ("run", run["run_id"]),
            ("experiment", run["experiment_id"]),
            ("status", run["status"]),
            ("repeats", f"{run['repeats']} job(s) per agent"),
            ("created", when(run["created_time"])),
            ("ended", when(run.get("ended_time"))),
        ],
    )
    rows = [
        (job["job_id"], job["agent_id"], job["status"]["status"], job["status"]["message"])
        for job in run["jobs"]
    ]
    show_table(console, "jobs", RUN_JOB_COLUMNS, rows, wide=wide)


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="'--label'")
    return key, value


def compare(
    run_id: RunArgument = None,
    experiment_id: ExperimentOption = None,
    job_ids: JobOption = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Compare a run's agents: each metric's mean, spread and ratio to the best."""
    _one_subject(run_id, experiment_id, job_ids)
    comparison = ask(
        server, api_key, lambda client: client.comparison(run_id, experiment_id, job_ids)
    )
    if as_json:
        print(json.dumps(comparison.model_dump(mode="json"), indent=2))
    else:
        show_comparison(comparison, console, wide=wide)


def report(
    run_id: RunArgument = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The file to write: .html or .csv")
    ] = Path("report.html"),
    experiment_id: ExperimentOption = None,
    job_ids: JobOption = None,
    server: ServerOption = DEFAULT_SERVER_URL,
    api_key: KeyOption = None,
) -> None:
    """Write a comparison report: HTML with charts (works offline) or CSV, by the extension."""
    _one_subject(run_id, experiment_id, job_ids)
    kind = output.suffix.lower()
    if kind not in REPORT_FORMATS:
        raise typer.BadParameter(
            f"{output} must end in .html or .csv", param_hint="'-o' / '--output'"
        )
    try:
        with RuckusClient(server, api_key) as client:
            comparison = client.comparison(run_id, experiment_id, job_ids)
            title, details = _subject(client, run_id, experiment_id, job_ids)
    except RuckusAPIError as err:
        raise _fail(err) from err
    text = (
        render_csv(comparison)
        if kind == ".csv"
        else render_html(comparison, title=title, details=details)
    )
    output.write_text(text, encoding="utf-8")
    console.print(
        f"wrote {output} ({len(comparison.rows)} rows, {len(comparison.metrics)} metrics)"
    )


def show_comparison(comparison: Comparison, out: Console, *, wide: bool = False) -> None:
    """One line per metric and row, the best first; then the failed jobs with their error."""
    by = comparison.by
    rows: list[tuple[str, ...]] = []
    for metric in comparison.metrics:
        unit = f" ({metric.unit})" if metric.unit else ""
        arrow = {True: " ↑", False: " ↓", None: ""}[metric.higher_is_better]
        measured = [(r, r.cells.get(metric.name)) for r in comparison.rows]
        ranked = sorted(
            ((r, c) for r, c in measured if c is not None),
            key=lambda rc: -(rc[1].ratio_to_best or 0),
        )
        rows += [
            (
                f"{metric.name}{unit}{arrow}",
                _row_name(row.label, row.key),
                str(cell.n),
                fmt(cell.mean),
                fmt(cell.stddev),
                fmt(cell.min),
                fmt(cell.max),
                fmt(cell.ratio_to_best),
            )
            for row, cell in ranked
        ]
    columns = [
        Column("metric", whole=True),
        Column(by, whole=True),
        Column("n", justify="right", drop=2, min_width=1),
        Column("mean", justify="right"),
        Column("stddev", justify="right", drop=1),
        Column("min", justify="right", drop=3),
        Column("max", justify="right", drop=3),
        Column("of best", justify="right"),
    ]
    show_table(out, f"comparison by {by}", columns, rows, wide=wide, grouped=True)
    hardware = [
        (
            _row_name(row.label, row.key),
            row.hardware.cpu_model,
            row.hardware.cores_logical,
            None if row.hardware.memory_gb is None else f"{row.hardware.memory_gb:g}",
            gpu_text(row.hardware),
            f"{len(row.job_ids)}"
            + (f", {len(row.failed)} failed" if row.failed else "")
            + (f", {len(row.pending)} not ended" if row.pending else ""),
        )
        for row in comparison.rows
    ]
    columns = [
        Column(by, whole=True),
        Column("cpu"),
        Column("threads", drop=2, min_width=7),
        Column("memory GB", drop=1, min_width=9),
        Column("gpus"),
        Column("jobs", min_width=4),
    ]
    show_table(out, "hardware", columns, hardware, wide=wide)
    failed = [
        (f.job_id, _row_name(row.label, row.key), f.status, f.error)
        for row in comparison.rows
        for f in row.failed
    ]
    if failed:
        columns = [
            Column("job", whole=True),
            Column(by, whole=True),
            Column("status"),
            Column("error"),
        ]
        show_table(out, "failed jobs", columns, failed, wide=wide)


def _row_name(label: str, key: str) -> str:
    return label if label == key else f"{label}\n{key}"


def _subject(
    client: RuckusClient, run_id: str | None, experiment_id: str | None, job_ids: list[str] | None
) -> tuple[str, list[tuple[str, str]]]:
    """The report's title and the facts listed under it."""
    if run_id is not None:
        run = client.get_run(run_id)
        details = [
            ("run", run_id),
            ("experiment", str(run.get("experiment_id"))),
            ("status", str(run.get("status"))),
            ("repeats", str(run.get("repeats"))),
            ("created", str(run.get("created_time"))),
            ("ended", str(run.get("ended_time") or "")),
        ]
        return f"Run {run_id}", details
    if experiment_id is not None:
        return f"Experiment {experiment_id}", [("experiment", experiment_id)]
    return "Comparison of jobs", [("jobs", ", ".join(job_ids or []))]


def _one_subject(run_id: str | None, experiment_id: str | None, job_ids: list[str] | None) -> None:
    if sum(x is not None and x != [] for x in (run_id, experiment_id, job_ids)) != 1:
        raise typer.BadParameter("give a RUN_ID, or --experiment, or --job (one of them)")
