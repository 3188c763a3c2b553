"""A fleet of agents each running a long job, watched by one worker: `make bench-fleet`.

For each fleet size N, a fresh stack (Temporal dev server, one worker, the API, one process
serving N + 1 fleet agents): every agent but the last is given a job that runs until the
benchmark ends it; while they run, the window measures the worker's and the dev server's CPU,
poll lag, history events per job-minute, and the dispatch of new jobs on the spare agent; then
the jobs end, spread out, and their completion latency is read from storage.
Past 400 lines on purpose: one script whose measurements read in the order they run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.agent_queue import queue_workflow_id
from bench.fleet_agent import FleetJob
from bench.profiled import profile_summary
from bench.run import experiment, stored_at
from bench.stack import CpuMeter, free_port, pct, temporal_child
from common.event_loop import run
from ruckus.supervisor import Child, Supervisor, http_ok, temporal_ready

console = Console()
FLEET_LOG = TypeAdapter(dict[str, FleetJob])
# Histories read per size for poll lag and history events (each is one read of a whole history).
HISTORY_SAMPLE = 200
DISPATCH_PROBES = 7
SUBMIT_TRIES = 5
# Submissions at once: enough to keep the worker busy, few enough that each is confirmed well
# within the API's submission timeout on a loaded machine.
SUBMITTING = 8
# A fleet's first polls and records after dispatch are not its steady state.
SETTLE_SECONDS = 15.0


@dataclass
class FleetResult:
    """One fleet size's figures; None where a figure could not be measured."""

    size: int
    notify: bool
    window: float
    load: tuple[float, float, float]
    cpu: dict[str, float] = field(default_factory=dict)  # % of the machine, per process
    worker_threads: dict[str, float] = field(default_factory=dict)  # % of the machine
    polls_per_s: float = 0.0
    poll_lag: list[float] = field(default_factory=list)
    events_per_job_minute: float = 0.0
    queue_events_per_job_minute: float = 0.0
    dispatch: list[float] = field(default_factory=list)
    completion: list[float] = field(default_factory=list)
    completed: int = 0
    refused: int = 0
    submit_seconds: float = 0.0
    worker_rss_mib: float = 0.0
    profile: list[tuple[str, float]] = field(default_factory=list)
    profile_calls: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def watchers_cpu(self) -> float:
        return self.cpu.get("worker", 0.0) + self.cpu.get("temporal", 0.0)


class FleetStack:
    """The processes of one fleet size, all children of this one."""

    def __init__(self, root: Path, agents: int, notify: bool, profile: Path | None) -> None:
        self.root = root
        self.agents = agents
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.fleet_port = free_port()
        self.address = f"127.0.0.1:{self.temporal_port}"
        self.supervisor = Supervisor(grace=10)
        env = {
            "TEMPORAL_ADDRESS": self.address,
            "RUCKUS_STORAGE_DATA_DIR": str(root / "storage"),
            "RUCKUS_TASK_QUEUE": "ruckus-jobs",
            "RUCKUS_CALLBACK_BASE_URL": self.api_url,
        }
        python = [sys.executable, "-m"]
        worker = ["ruckus.cli", "worker"]
        if profile is not None:
            worker = ["bench.profiled", str(profile), *worker]
        fleet = ["bench.fleet_agent", "--port", str(self.fleet_port), "--agents", str(agents)]
        if not notify:
            fleet.append("--no-notify")
        logs = root / "logs"
        self.children = {
            "temporal": temporal_child(root, self.temporal_port),
            "worker": Child("worker", [*python, *worker], logs / "worker.log", env),
            "api": Child(
                "api",
                [*python, "ruckus.cli", "api", "--port", str(self.api_port)],
                logs / "api.log",
                env,
            ),
            "fleet": Child("fleet agents", [*python, *fleet], logs / "fleet.log"),
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def fleet_url(self) -> str:
        return f"http://127.0.0.1:{self.fleet_port}"

    def agent_url(self, i: int) -> str:
        return f"{self.fleet_url}/a/{i}"

    def start(self) -> None:
        c = self.children
        self.supervisor.start(c["temporal"], lambda: temporal_ready(self.address), 60, "")
        self.supervisor.start(c["worker"], lambda: "serving" in c["worker"].output(), 60, "")
        self.supervisor.start(c["api"], lambda: http_ok(self.api_url + "/health"), 60, "")
        self.supervisor.start(c["fleet"], lambda: http_ok(self.agent_url(0) + "/health"), 60, "")

    def process(self, name: str) -> psutil.Process:
        pid = self.children[name].pid
        assert pid is not None
        return psutil.Process(pid)

    def stop(self) -> None:
        self.supervisor.stop_all()


def thread_seconds(proc: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


async def gather_limited(calls: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run the calls with at most `limit` at once, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


class Fleet:
    """One fleet size's run on its stack."""

    def __init__(self, stack: FleetStack, args: argparse.Namespace, notify: bool) -> None:
        self.stack = stack
        self.args = args
        self.notify = notify
        self.n = stack.agents - 1  # the last agent is kept for dispatch probes
        # Several clients: one httpx pool scanning hundreds of connections costs the benchmark.
        self.https = [httpx.AsyncClient(base_url=stack.api_url, timeout=120) for _ in range(16)]
        self.http = self.https[0]
        self.fleet = httpx.AsyncClient(base_url=stack.fleet_url, timeout=120)
        self.refused = 0

    async def aclose(self) -> None:
        for h in self.https:
            await h.aclose()
        await self.fleet.aclose()

    async def log(self) -> dict[str, FleetJob]:
        return FLEET_LOG.validate_json((await self.fleet.get("/bench/log")).content)

    async def mode(self, seconds: float | None, agent: int | None = None) -> None:
        body = {"seconds": seconds, "notify": self.notify, "agent": agent}
        (await self.fleet.post("/bench/mode", json=body)).raise_for_status()

    async def register(self) -> list[str]:
        async def one(i: int) -> str:
            h = self.https[i % len(self.https)]
            r = await h.post("/api/v1/agents/register", json={"agent_url": self.stack.agent_url(i)})
            r.raise_for_status()
            return str(r.json()["agent_id"])

        return await gather_limited([lambda i=i: one(i) for i in range(self.stack.agents)], 16)

    async def submit(self, i: int, exp: str, agent: str) -> tuple[str, float]:
        """Submit one job; a 503 (its workflow not confirmed in time) is submitted again, as
        the answer says, and counted."""
        h = self.https[i % len(self.https)]
        for _ in range(SUBMIT_TRIES - 1):
            t0 = time.time()
            r = await h.post("/api/v1/jobs", json={"experiment_id": exp, "agent_id": agent})
            if r.status_code != 503:
                break
            self.refused += 1
        r.raise_for_status()
        return str(r.json()["job_id"]), t0

    async def submit_all(self, exp: str, agents: list[str]) -> list[tuple[str, float]]:
        calls = [lambda i=i: self.submit(i, exp, agents[i]) for i in range(len(agents))]
        return await gather_limited(calls, SUBMITTING)

    async def wait_closed(self, client: Client, job_ids: list[str], timeout: float) -> None:
        async def closed(job_id: str) -> None:
            await client.get_workflow_handle(job_id).result()

        calls = [lambda j=j: closed(j) for j in job_ids]
        await asyncio.wait_for(gather_limited(calls, 200), timeout)

    async def wait_received(self, job_ids: list[str], timeout: float) -> dict[str, FleetJob]:
        """Until every job is on its agent; the benchmark reads the fleet's log once a second."""
        deadline = time.monotonic() + timeout
        while True:
            log = await self.log()
            if all(j in log for j in job_ids):
                return log
            if time.monotonic() > deadline:
                missing = sum(j not in log for j in job_ids)
                raise TimeoutError(f"{missing} jobs never reached their agents")
            await asyncio.sleep(1)

    async def run(self, client: Client) -> FleetResult:
        args, stack, n = self.args, self.stack, self.n
        agents = await self.register()
        exp = await experiment(self.http)
        if self.notify:
            # A job each, ended at once: an agent that has notified an end is trusted to, and
            # its running jobs are then polled only as a safety net.
            await self.mode(0.0)
            warm = await self.submit_all(exp, agents)
            await self.wait_closed(client, [j for j, _ in warm], 600)
        await self.mode(None)
        await self.mode(0.2, agent=n)
        began = time.time()
        jobs = await self.submit_all(exp, agents[:n])
        job_ids = [j for j, _ in jobs]
        await self.wait_received(job_ids, 600)
        submit_seconds = time.time() - began
        console.print(f"  {n} jobs on their agents after {submit_seconds:.0f} s")
        await asyncio.sleep(SETTLE_SECONDS)

        res = FleetResult(
            size=n,
            notify=self.notify,
            window=args.fleet_seconds,
            load=os.getloadavg(),
            submit_seconds=submit_seconds,
        )
        procs = {name: stack.process(name) for name in ("worker", "temporal", "api", "fleet")}
        worker = procs["worker"]
        meter = CpuMeter(procs)
        meter.start()
        threads0 = thread_seconds(worker)
        t0 = time.time()
        if args.profile:
            worker.send_signal(signal.SIGUSR1)
        await asyncio.sleep(args.fleet_seconds / 2)
        res.dispatch = await self.probe_dispatch(client, exp, agents[n])
        await asyncio.sleep(max(0.0, t0 + args.fleet_seconds - time.time()))
        t1 = time.time()
        if args.profile:
            worker.send_signal(signal.SIGUSR2)
        meter.stop()
        threads1 = thread_seconds(worker)
        res.worker_rss_mib = worker.memory_info().rss / 2**20
        log1 = await self.log()
        res.load = os.getloadavg()
        res.window = t1 - t0
        cores = psutil.cpu_count() or 1
        res.cpu = {k: v / (res.window * cores) * 100 for k, v in meter.total.items()}
        main = worker.pid
        other = sum(v - threads0.get(t, 0.0) for t, v in threads1.items() if t != main)
        res.worker_threads = {
            "event loop thread": (threads1.get(main, 0.0) - threads0.get(main, 0.0)),
            "other threads (SDK core, SQLite)": other,
        }
        res.worker_threads = {
            k: v / (res.window * cores) * 100 for k, v in res.worker_threads.items()
        }
        polls = sum(len([p for p in log1[j].polls if t0 <= p < t1]) for j in job_ids if j in log1)
        res.polls_per_s = polls / res.window
        sample = random.Random(n).sample(range(n), min(HISTORY_SAMPLE, n))
        res.poll_lag, res.events_per_job_minute = await self.histories(
            client, [job_ids[i] for i in sample], log1, t0, t1
        )
        queues = [queue_workflow_id(agents[i]) for i in sample]
        res.queue_events_per_job_minute = await self.events_in(client, queues, t0, t1)

        ended = time.time()
        spread = n / args.fleet_end_rate
        finish = await self.fleet.post("/bench/finish", json={"spread": spread})
        finish.raise_for_status()
        await self.wait_closed(client, job_ids, spread + 600)
        console.print(f"  {n} jobs closed {time.time() - ended:.0f} s after the first end")
        final = await self.log()
        stored = stored_at(stack.root)
        for j in job_ids:
            finished = final[j].finished
            if j in stored and finished is not None:
                res.completion.append(stored[j] - finished)
        res.completed = len(res.completion)
        res.refused = self.refused
        if args.profile:
            res.profile, res.profile_calls = profile_summary(stack.root / "worker.prof")
        return res

    async def probe_dispatch(self, client: Client, exp: str, agent: str) -> list[float]:
        """Submit → the spare agent has the job, one job at a time, while the fleet runs."""
        latencies = []
        for i in range(DISPATCH_PROBES):
            job_id, t0 = await self.submit(i, exp, agent)
            await self.wait_closed(client, [job_id], 120)
            latencies.append((await self.log())[job_id].received - t0)
        return latencies

    async def events_in(
        self, client: Client, workflow_ids: list[str], t0: float, t1: float
    ) -> float:
        """History events per workflow-minute in the window, over the workflows given."""

        async def one(workflow_id: str) -> int:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            return sum(t0 <= e.event_time.ToDatetime().timestamp() < t1 for e in history.events)

        counts = await gather_limited([lambda w=w: one(w) for w in workflow_ids], 8)
        return sum(counts) / len(workflow_ids) / ((t1 - t0) / 60) if workflow_ids else 0.0

    async def histories(
        self, client: Client, sample: list[str], log: dict[str, FleetJob], t0: float, t1: float
    ) -> tuple[list[float], float]:
        """Poll lag and history events per job-minute in the window, from a sample of jobs.

        A poll's lag: when its status call reached the agent, against when its timer was due
        (the timer's start in history plus its duration, both the server's clock).
        """
        lags: list[float] = []
        events = 0

        async def one(job_id: str) -> tuple[list[float], int]:
            history = await client.get_workflow_handle(job_id).fetch_history()
            due = []
            count = 0
            for e in history.events:
                at = e.event_time.ToDatetime().timestamp() if e.HasField("event_time") else 0.0
                if t0 <= at < t1:
                    count += 1
                if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                    timeout: timedelta = (
                        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
                    )
                    due.append(at + timeout.total_seconds())
            polls = sorted(log[job_id].polls)
            found = []
            for d in due:
                if not t0 <= d < t1:
                    continue
                after = [p for p in polls if p >= d - 0.05]
                if after:
                    found.append(after[0] - d)
            return found, count

        results = await gather_limited([lambda j=j: one(j) for j in sample], 8)
        for found, count in results:
            lags.extend(found)
            events += count
        per_job_minute = events / len(sample) / ((t1 - t0) / 60) if sample else 0.0
        return lags, per_job_minute


def ms(values: list[float], q: float = 0.5) -> str:
    return f"{pct(values, q) * 1000:.0f}" if values else "n/a"


def rows(r: FleetResult) -> list[tuple[str, str]]:
    cpu = r.cpu
    per_job = r.watchers_cpu / r.size * 1000  # milli-percent of the machine per watched job
    return [
        ("jobs running while measured", str(r.size)),
        ("agents notify job ends", "yes" if r.notify else "no"),
        ("window (s)", f"{r.window:.0f}"),
        ("load average (1, 5, 15 min) after the window", ", ".join(f"{x:.2f}" for x in r.load)),
        ("all jobs on their agents after (s)", f"{r.submit_seconds:.0f}"),
        ("worker CPU, % of the machine", f"{cpu['worker']:.1f}"),
        ("  of which the event loop thread", f"{r.worker_threads['event loop thread']:.1f}"),
        ("  of which other threads", f"{r.worker_threads['other threads (SDK core, SQLite)']:.1f}"),
        ("dev server CPU, % of the machine", f"{cpu['temporal']:.1f}"),
        ("worker + dev server CPU, % of the machine", f"{r.watchers_cpu:.1f}"),
        ("worker + dev server CPU per 1,000 jobs watched, %", f"{per_job:.1f}"),
        (
            "worker memory RSS at the window's end (MiB)",
            f"{r.worker_rss_mib:.0f}" if r.worker_rss_mib else "not measured",
        ),
        ("API CPU, % of the machine", f"{cpu['api']:.1f}"),
        ("fleet agents' CPU, % of the machine", f"{cpu['fleet']:.1f}"),
        ("status polls per second (all jobs)", f"{r.polls_per_s:.1f}"),
        ("polls measured for lag", str(len(r.poll_lag))),
        ("poll lag p50 (ms)", ms(r.poll_lag)),
        ("poll lag p95 (ms)", ms(r.poll_lag, 0.95)),
        ("poll lag max (ms)", f"{max(r.poll_lag) * 1000:.0f}" if r.poll_lag else "n/a"),
        ("history events per job-minute", f"{r.events_per_job_minute:.1f}"),
        ("history events per job-hour", f"{r.events_per_job_minute * 60:.0f}"),
        ("its agent queue's history events per job-minute", f"{r.queue_events_per_job_minute:.1f}"),
        ("dispatch p50 of a new job mid-run (ms)", ms(r.dispatch)),
        (
            "dispatch max of a new job mid-run (ms)",
            f"{max(r.dispatch) * 1000:.0f}" if r.dispatch else "n/a",
        ),
        ("jobs completed", f"{r.completed} / {r.size}"),
        ("submissions refused (503) and sent again", str(r.refused)),
        ("completion p50: agent's end → COMPLETED stored (ms)", ms(r.completion)),
        ("completion p95 (ms)", ms(r.completion, 0.95)),
    ]


def table(r: FleetResult) -> Table:
    mode = "notifying agents" if r.notify else "agents that do not notify"
    t = Table(title=f"Fleet: {r.size} running jobs, {mode}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for name, value in rows(r):
        t.add_row(name, value)
    return t


def growth(results: list[FleetResult]) -> list[tuple[str, ...]]:
    """How each figure grows with N, per mode: the figure at each N and its ratio to the first."""
    lines: list[tuple[str, ...]] = []
    for notify in (True, False):
        runs = sorted((r for r in results if r.notify is notify), key=lambda r: r.size)
        if not runs:
            continue
        mode = "notify" if notify else "poll"
        figures: list[tuple[str, Callable[[FleetResult], float]]] = [
            ("worker + dev server CPU %", lambda r: r.watchers_cpu),
            ("  per job watched (milli-%)", lambda r: r.watchers_cpu / r.size * 1000),
            ("poll lag p95 (ms)", lambda r: pct(r.poll_lag, 0.95) * 1000 if r.poll_lag else 0.0),
            ("history events per job-minute", lambda r: r.events_per_job_minute),
            ("queue history events per job-minute", lambda r: r.queue_events_per_job_minute),
            ("dispatch p50 (ms)", lambda r: pct(r.dispatch, 0.5) * 1000 if r.dispatch else 0.0),
            (
                "completion p50 (ms)",
                lambda r: pct(r.completion, 0.5) * 1000 if r.completion else 0.0,
            ),
        ]
        for name, figure in figures:
            values = [figure(r) for r in runs]
            shown = ", ".join(f"N={r.size}: {v:.1f}" for r, v in zip(runs, values, strict=True))
            first = values[0]
            ratios = ", ".join(f"{v / first:.2f}x" if first else "n/a" for v in values)
            lines.append((mode, name, shown, ratios))
    return lines


SECTION = "## Fleet"


def machine_line() -> str:
    """The machine, as the fleet section states it."""
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"Machine: cores {os.cpu_count()}, cpu {platform.processor() or platform.machine()}, "
        f"memory {memory:.0f} GiB, python {platform.python_version()}."
    )


def markdown(results: list[FleetResult], command: str, machine: str) -> str:
    out = [SECTION, "", f"Command: `{command}`", "", machine, ""]
    for r in results:
        mode = "notifying agents" if r.notify else "agents that do not notify"
        out += [f"### {r.size} running jobs, {mode}", "", "| measure | value |", "| --- | --- |"]
        out += [f"| {k.strip()} | {v} |" for k, v in rows(r)]
        if r.profile:
            out += ["", "Worker's event loop thread under cProfile, own time by area:", ""]
            out += ["| area | share |", "| --- | --- |"]
            out += [f"| {k} | {v:.0f}% |" for k, v in r.profile]
            out += ["", "Ruckus functions with the most time under them:", ""]
            out += ["| function | share of profiled time |", "| --- | --- |"]
            out += [f"| `{k}` | {v:.0f}% |" for k, _, v in r.profile_calls]
        out.append("")
    out += ["### Growth with N", "", "| mode | figure | at each N | against the smallest N |"]
    out += ["| --- | --- | --- | --- |"]
    out += [f"| {' | '.join(line)} |" for line in growth(results)]
    out.append("")
    return "\n".join(out)


def run_one(size: int, notify: bool, args: argparse.Namespace) -> FleetResult:
    root = Path(tempfile.mkdtemp(prefix=f"ruckus-fleet-{size}-"))
    profile = root / "worker.prof" if args.profile else None
    stack = FleetStack(root, size + 1, notify, profile)
    mode = "notifying" if notify else "not notifying"
    console.print(f"fleet of {size} ({mode}) under {root}")
    try:
        stack.start()

        async def go() -> FleetResult:
            client = await Client.connect(stack.address)
            fleet = Fleet(stack, args, notify)
            try:
                return await fleet.run(client)
            finally:
                await fleet.aclose()

        return run(go())
    except Exception as err:
        dead = stack.supervisor.dead_child()
        if dead is not None:  # the likelier cause: say which process ended, and how
            why = f"the {dead.name} exited with code {dead.exit_code()}; see {dead.log_path}"
            raise RuntimeError(why) from err
        raise
    finally:
        stack.stop()


def run_fleet(args: argparse.Namespace) -> list[FleetResult]:
    results = []
    modes = [m.strip() for m in args.fleet_modes.split(",")]
    for size in (int(s) for s in args.fleet.split(",")):
        for mode in modes:
            try:
                result = run_one(size, mode == "notify", args)
            except Exception as err:  # the other sizes still run and are reported
                console.print(f"fleet of {size} ({mode}) failed: {err!r}")
                continue
            console.print(table(result))
            results.append(result)
            if args.fleet_json is not None:
                with args.fleet_json.open("a") as saved:
                    saved.write(json.dumps(asdict(result)) + "\n")
    if results:
        t = Table(title="Growth with N")
        for column in ("mode", "figure", "at each N", "against the smallest N"):
            t.add_column(column)
        for line in growth(results):
            t.add_row(*line)
        console.print(t)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet", default="", help="fleet sizes, e.g. 100,300,1000")
    parser.add_argument("--fleet-modes", default="notify,poll", help="notify, poll or both")
    parser.add_argument("--fleet-seconds", type=float, default=180, help="measured window")
    parser.add_argument("--fleet-end-rate", type=float, default=10, help="job ends per second")
    parser.add_argument("--profile", action="store_true", help="cProfile the worker's window")
    parser.add_argument("--fleet-json", type=Path, help="append each size's figures here")
    parser.add_argument("--fleet-from", type=Path, help="report figures saved by --fleet-json")


def load_results(path: Path) -> list[FleetResult]:
    """Figures saved by --fleet-json, to report runs made apart as one section."""
    results = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        data["load"] = tuple(data["load"])
        data["profile"] = [tuple(p) for p in data["profile"]]
        data["profile_calls"] = [tuple(p) for p in data["profile_calls"]]
        results.append(FleetResult(**data))
    return sorted(results, key=lambda r: (r.size, not r.notify))
