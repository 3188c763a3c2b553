"""Ruckus against the engine's floor, side by side on one machine: `make bench`.

Starts one Temporal dev server, a floor worker, a Ruckus worker, the Ruckus API and
instant agents as child processes, measures, prints a table and writes bench/RESULTS.md.
Past 400 lines on purpose: one script whose measurements read in the order they run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from activities.agent_queue import queue_workflow_id
from bench.engine import COUNTED
from bench.floor import FloorWorkflow
from bench.profiled import profile_summary, written
from bench.stack import CpuMeter, Stack, ms, pct
from ruckus.temporal_server import find_temporal_binary

REPO = Path(__file__).resolve().parents[1]
# The file's "## " sections (the chaos run, the profile notes) are kept when it is rewritten.
OTHER_SECTIONS = "\n## "
console = Console()


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, section: str, name: str, value: str) -> None:
        self.rows.append((section, name, value))
        console.print(f"  {section:<12} {name:<46} {value}")


async def machine(client: Client) -> dict[str, str]:
    cli = await asyncio.create_subprocess_exec(
        str(find_temporal_binary()), "--version", stdout=asyncio.subprocess.PIPE
    )
    version = (await cli.communicate())[0].decode().strip()
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return {
        "cores": str(os.cpu_count()),
        "cpu": platform.processor() or platform.machine(),
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "temporal": f"{version} (server {info.server_version})",
    }


async def floor_once(client: Client, i: int) -> float:
    start = time.perf_counter()
    await client.execute_workflow(
        FloorWorkflow.run, str(i), id=f"floor-{uuid.uuid4().hex}", task_queue="floor"
    )
    return time.perf_counter() - start


async def floor_saturated(client: Client, n: int) -> tuple[float, list[float]]:
    """Workflows per second with `n` started at once, and their start-to-result latencies."""
    began = time.perf_counter()
    latencies = await asyncio.gather(*(floor_once(client, i) for i in range(n)))
    return n / (time.perf_counter() - began), list(latencies)


async def floor(client: Client, n: int, res: Results) -> tuple[float, float]:
    """Workflows per second at saturation, and p50 start-to-result latency."""
    for i in range(20):  # warm up
        await floor_once(client, i)
    unloaded = [await floor_once(client, i) for i in range(30)]
    rate, latencies = await floor_saturated(client, n)
    res.add("floor", f"workflows/s at saturation ({n} at once)", f"{rate:.1f}")
    res.add("floor", "p50 start-to-result, saturated (ms)", ms(latencies))
    res.add("floor", "p50 start-to-result, one at a time (ms)", ms(unloaded))
    return rate, pct(unloaded, 0.5)


async def setup_agents(http: httpx.AsyncClient, stack: Stack, count: int) -> list[str]:
    ids = []
    for i in range(count):
        r = await http.post("/api/v1/agents/register", json={"agent_url": stack.agent_url(i)})
        r.raise_for_status()
        ids.append(r.json()["agent_id"])
    return ids


async def experiment(http: httpx.AsyncClient) -> str:
    spec = {
        "name": "instant",
        "model": "none",
        "task": {"name": "instant", "type": "compute_benchmark", "params": {}},
    }
    r = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
    r.raise_for_status()
    return str(r.json()["experiment_id"])


async def submit(http: httpx.AsyncClient, exp: str, agent: str) -> tuple[str, float, float]:
    """Submit one job; its id, submit time (epoch s) and create latency (s)."""
    t0 = time.time()
    r = await http.post("/api/v1/jobs", json={"experiment_id": exp, "agent_id": agent})
    r.raise_for_status()
    return str(r.json()["job_id"]), t0, time.time() - t0


async def wait_terminal(client: Client, job_ids: list[str], timeout: float) -> None:
    """Wait for the jobs' workflows to close, as the floor waits for its results.

    Long polls on Temporal, not API polling: the measurement must not load what it measures.
    """

    async def closed(job_id: str) -> None:
        await client.get_workflow_handle(job_id).result()

    await asyncio.wait_for(asyncio.gather(*(closed(j) for j in job_ids)), timeout)


def stored_at(root: Path) -> dict[str, float]:
    """When each job's final record was written (epoch s), read from the server's storage.

    The issue's completion latency ends when the server has the job COMPLETED with its results
    stored, which is before its workflow closes (freeing the agent comes after).
    """
    db = root / "storage" / "ruckus.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT job_id, updated_at FROM jobs WHERE status = 'completed'")
        return {job_id: _utc(at) for job_id, at in rows}


def _utc(stamp: str) -> float:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


async def wait_status(http: httpx.AsyncClient, job_id: str, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await http.get(f"/api/v1/jobs/{job_id}")).json()["status"]["status"] != status:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id} did not become {status}")
        await asyncio.sleep(0.1)


@dataclass
class JobsSetup:
    """The jobs section's agents and experiment, warmed up, and its one-at-a-time figures."""

    agent_ids: list[str]
    exp: str
    unloaded_p50: float


async def jobs_setup(
    http: httpx.AsyncClient, client: Client, stack: Stack, agents: int, res: Results
) -> JobsSetup:
    agent_ids = await setup_agents(http, stack, agents)
    exp = await experiment(http)
    # One warm-up job per agent.
    warm = [await submit(http, exp, a) for a in agent_ids]
    await wait_terminal(client, [w[0] for w in warm], 120)

    unloaded, idle_dispatch, idle_closed = [], [], []
    idle_finished: dict[str, float] = {}
    for _ in range(10):
        job_id, t0, _ = await submit(http, exp, agent_ids[0])
        await wait_terminal(client, [job_id], 60)
        closed = (await client.get_workflow_handle(job_id).describe()).close_time
        assert closed is not None
        unloaded.append(closed.timestamp() - t0)
        seen = (await http.get(stack.agent_url(0) + "/bench/log")).json()[job_id]
        idle_dispatch.append(seen["received"] - t0)
        idle_finished[job_id] = seen["finished"]
        idle_closed.append(closed.timestamp() - seen["finished"])
    stored = stored_at(stack.root)
    idle_completion = [stored[j] - finished for j, finished in idle_finished.items()]
    res.add("jobs", "p50 submit-to-completed, one at a time (ms)", ms(unloaded))
    res.add("jobs", "p50 dispatch on an idle agent (ms)", ms(idle_dispatch))
    res.add("jobs", "p50 completion, one at a time (ms)", ms(idle_completion))
    res.add("jobs", "p50 agent done → workflow closed, one at a time (ms)", ms(idle_closed))
    return JobsSetup(agent_ids, exp, pct(unloaded, 0.5))


@dataclass
class JobsRound:
    """One saturated round of jobs: its rate and per-job latencies (s)."""

    rate: float
    completed: int
    to_completed: list[float]
    dispatch: list[float]
    completion: list[float]
    closing: list[float]


async def jobs_round(
    client: Client,
    stack: Stack,
    setup: JobsSetup,
    n: int,
    http: httpx.AsyncClient,
    meter: CpuMeter,
) -> JobsRound:
    agent_ids, exp = setup.agent_ids, setup.exp
    agents = len(agent_ids)
    # One client per agent: httpx's pool scans all its connections and waiting requests on
    # every response, and one pool for all 300 made the benchmark's own client a tenth of the
    # CPU per job.
    clients = [httpx.AsyncClient(base_url=stack.api_url, timeout=60) for _ in agent_ids]
    meter.start()
    began = time.time()
    submitted = await asyncio.gather(
        *(submit(clients[i % agents], exp, agent_ids[i % agents]) for i in range(n))
    )
    await wait_terminal(client, [s[0] for s in submitted], 600)
    # Only the jobs' own work: the reads below that measure them stay out of their CPU.
    meter.stop()
    for c in clients:
        await c.aclose()
    logs: dict[str, dict[str, Any]] = {}
    for i in range(agents):
        logs.update((await http.get(stack.agent_url(i) + "/bench/log")).json())
    stored = stored_at(stack.root)
    to_completed, dispatch, completion, closing, statuses = [], [], [], [], []
    last_close = began
    for job_id, t0, _ in submitted:
        desc = await client.get_workflow_handle(job_id).describe()
        assert desc.close_time is not None
        closed = desc.close_time.timestamp()
        last_close = max(last_close, closed)
        to_completed.append(closed - t0)
        agent_log = logs[job_id]
        dispatch.append(agent_log["received"] - t0)
        completion.append(stored[job_id] - agent_log["finished"])
        closing.append(closed - agent_log["finished"])
        statuses.append((await http.get(f"/api/v1/jobs/{job_id}")).json()["status"]["status"])
    rate = n / (last_close - began)
    return JobsRound(rate, statuses.count("completed"), to_completed, dispatch, completion, closing)


def report_jobs(rounds: list[JobsRound], n: int, agents: int, res: Results) -> None:
    """The saturated rounds' latencies, pooled."""

    def pooled(name: str) -> list[float]:
        return [v for r in rounds for v in getattr(r, name)]

    completed = sum(r.completed for r in rounds)
    res.add(
        "jobs", f"jobs completed / submitted ({agents} agents)", f"{completed} / {n * len(rounds)}"
    )
    res.add("jobs", "p50 submit-to-completed, saturated (ms)", ms(pooled("to_completed")))
    res.add("jobs", "p95 submit-to-completed, saturated (ms)", ms(pooled("to_completed"), 0.95))
    res.add("jobs", "p50 dispatch: submit → agent has it (ms)", ms(pooled("dispatch")))
    res.add("jobs", "p50 completion: agent done → COMPLETED stored (ms)", ms(pooled("completion")))
    res.add("jobs", "p50 agent done → job's workflow closed (ms)", ms(pooled("closing")))


async def deep_queue(
    http: httpx.AsyncClient, client: Client, stack: Stack, n: int, index: int, res: Results
) -> None:
    url = stack.agent_url(index)
    await httpx.AsyncClient().post(url + "/bench/mode", params={"busy": True})
    r = await http.post("/api/v1/agents/register", json={"agent_url": url})
    agent = r.json()["agent_id"]
    exp = await experiment(http)
    latencies = []
    for _ in range(n):
        latencies.append((await submit(http, exp, agent))[2])
    first, last = latencies[:100], latencies[-100:]
    res.add("deep queue", f"create p50, first 100 of {n} (ms)", ms(first))
    res.add("deep queue", f"create p50, last 100 of {n} (ms)", ms(last))
    handle = client.get_workflow_handle(queue_workflow_id(agent))
    desc = await handle.describe()
    runs = len([w async for w in client.list_workflows(f'WorkflowId="{queue_workflow_id(agent)}"')])
    res.add("deep queue", "queue workflow history length (current run)", str(desc.history_length))
    res.add("deep queue", "queue workflow runs (continue-as-new)", str(runs))
    worker = stack.children["worker"]
    assert worker.pid is not None
    rss = psutil.Process(worker.pid).memory_info().rss / 2**20
    res.add("deep queue", "worker memory RSS (MiB)", f"{rss:.0f}")


async def polling_cost(
    http: httpx.AsyncClient, client: Client, stack: Stack, index: int, seconds: float, res: Results
) -> None:
    url = stack.agent_url(index)
    await httpx.AsyncClient().post(url + "/bench/mode", params={"hold": True})
    r = await http.post("/api/v1/agents/register", json={"agent_url": url})
    agent = r.json()["agent_id"]
    exp = await experiment(http)
    job_id, _, _ = await submit(http, exp, agent)
    handle = client.get_workflow_handle(job_id)
    await wait_status(http, job_id, "running", 30)
    before = (await handle.describe()).history_length
    await asyncio.sleep(seconds)
    after = (await handle.describe()).history_length
    per_minute = (after - before) / (seconds / 60)
    res.add("polling", "history events per job-minute (default 5 s poll)", f"{per_minute:.0f}")


async def measure(args: argparse.Namespace, stack: Stack) -> Results:
    res = Results()
    client = await Client.connect(stack.address)
    res.machine = await machine(client)
    res.machine["load average at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(res.machine)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        floor_rate, floor_p50 = await floor(client, args.floor, res)
        setup = await jobs_setup(http, client, stack, args.agents, res)
        # Rounds interleave the floor and the jobs (floor, jobs, floor, ..., floor): each
        # round's ratio takes the floor on both sides of it, so a machine whose speed drifts
        # moves both alike, and the median of the rounds is the figure.
        floors, rounds, ratios = [floor_rate], [], []
        procs = stack.processes()
        meter = CpuMeter(procs, stack.metrics_port)
        floor_meter = CpuMeter({}, stack.metrics_port)
        worker = procs["worker"]
        if stack.profile is not None:
            worker.send_signal(signal.SIGUSR1)
        for k in range(1, args.rounds + 1):
            rounds.append(await jobs_round(client, stack, setup, args.jobs, http, meter))
            if stack.profile is not None and k == args.rounds:
                worker.send_signal(signal.SIGUSR2)
            floor_meter.start()
            floors.append((await floor_saturated(client, args.floor))[0])
            floor_meter.stop()
            ratio = rounds[-1].rate / ((floors[-2] + floors[-1]) / 2)
            ratios.append(ratio)
            res.add(
                "rounds",
                f"round {k}: floor wf/s before, after; jobs/s; ratio",
                f"{floors[-2]:.1f}, {floors[-1]:.1f}; {rounds[-1].rate:.1f}; {ratio:.2f}",
            )
        report_jobs(rounds, args.jobs, args.agents, res)
        jobs_run = args.jobs * args.rounds
        for name, seconds in meter.total.items():
            res.add(
                "CPU per job",
                f"{name} (ms, over the jobs rounds)",
                f"{seconds / jobs_run * 1000:.1f}",
            )
        res.add("CPU per job", "all (ms)", f"{sum(meter.total.values()) / jobs_run * 1000:.1f}")
        floors_run = args.floor * args.rounds
        for label in COUNTED:
            res.add(
                "engine",
                f"{label}: per floor workflow, per job",
                f"{floor_meter.engine[label] / floors_run:.1f}, "
                f"{meter.engine[label] / jobs_run:.1f}",
            )
        res.add(
            "ratios",
            f"jobs/s ÷ floor workflows/s, median of {args.rounds} (min to max)",
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f})",
        )
        res.add(
            "ratios", "job p50 ÷ floor p50 (one at a time)", f"{setup.unloaded_p50 / floor_p50:.1f}"
        )
        if stack.profile is not None:
            await written(stack.profile)
            areas, calls = profile_summary(stack.profile)
            for name, share in areas:
                res.add("profile", f"worker event loop, own time: {name}", f"{share:.0f}%")
            for name, _, share in calls:
                res.add("profile", f"worker event loop, under `{name}`", f"{share:.0f}%")
        await polling_cost(http, client, stack, args.agents + 1, args.poll_seconds, res)
        await deep_queue(http, client, stack, args.deep, args.agents, res)
    return res


def run(args: argparse.Namespace) -> Results:
    root = Path(tempfile.mkdtemp(prefix="ruckus-bench-"))
    stack = Stack(root, args.agents, args.profile)
    console.print(f"starting the stack under {root}")
    # SIGTERM unwinds like Ctrl-C, so the children are always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.start()
        return asyncio.run(measure(args, stack))
    finally:
        stack.stop()


def report(res: Results, command: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in res.machine.items()),
        "",
        "| section | measure | value |",
        "| --- | --- | --- |",
        *(f"| {s} | {n} | {v} |" for s, n, v in res.rows),
        "",
    ]
    return "\n".join(lines)


def keep_sections(out: Path, replaced: str | None = None) -> tuple[str, str]:
    """The file's top part and its "## " sections, less the one titled `replaced`."""
    if not out.exists():
        return "", ""
    text = out.read_text()
    if OTHER_SECTIONS not in text:
        return text, ""
    top, rest = text.split(OTHER_SECTIONS, 1)
    sections = ["## " + part for part in rest.split(OTHER_SECTIONS)]
    kept = [part for part in sections if replaced is None or not part.startswith(replaced)]
    return top, "\n".join(p.rstrip("\n") + "\n" for p in kept)


def main() -> None:
    # bench.fleet builds on this module's helpers: imported here, not at the top.
    from bench import fleet

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--floor", type=int, default=300)
    parser.add_argument("--deep", type=int, default=2000)
    parser.add_argument("--poll-seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="floor and jobs rounds, interleaved")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    fleet.add_arguments(parser)  # --profile there profiles the worker here too
    args = parser.parse_args()
    command = "python -m bench.run " + " ".join(sys.argv[1:])
    if args.fleet or args.fleet_from:
        # The fleet alone (`make bench-fleet`): its section of the file is replaced.
        results = fleet.load_results(args.fleet_from) if args.fleet_from else fleet.run_fleet(args)
        top, kept = keep_sections(args.out, replaced=fleet.SECTION)
        section = fleet.markdown(results, command.strip(), fleet.machine_line())
        args.out.write_text(top.rstrip("\n") + "\n\n" + section + ("\n" + kept if kept else ""))
        console.print(f"written to {args.out}")
        return
    res = run(args)
    table = Table(title="Ruckus vs the engine's floor")
    for column in ("section", "measure", "value"):
        table.add_column(column)
    for row in res.rows:
        table.add_row(*row)
    console.print(table)
    _, kept = keep_sections(args.out)
    args.out.write_text(
        report(res, "make bench  # " + command.strip()) + ("\n" + kept if kept else "")
    )
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
