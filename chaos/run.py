"""`make chaos`: jobs on the real local stack while faults are injected, then an exact accounting.

Starts a Temporal dev server, a worker, the API and real agents as child processes, submits
tiny compute jobs of mixed length over HTTP, kills and pauses processes at seeded random
moments, waits for every job to end and checks that no job or result was lost or run twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from chaos.accounting import Accounting, AgentSide, Submitted, account
from chaos.faults import Fault, FaultDriver
from chaos.stack import ChaosStack, Timing, wait_for
from common.storage import StorageBackend, create_storage

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
HEADING = "## Chaos run"
# Seconds each kind of tiny job computes for: a mix of instant and longer jobs.
DURATIONS = (0.0, 0.5, 1.0, 2.0, 3.0)
SUBMIT_DEADLINE = 180.0
ABOUT = """\
The run starts a Temporal dev server (SQLite file), a worker, the API and real agents
(`ruckus agent`, tiny compute_benchmark jobs of 0 to 3 s), submits jobs over HTTP and injects
faults one at a time at seeded random moments: worker and Temporal dev server SIGKILL and
restart (same database file and port), API restart (SIGTERM), agent SIGKILL and restart (same
port and data dir), an agent paused by SIGSTOP for 1 to 2.5 s, an agent killed and kept away
past the agent-call retry budget, and with `--postgres` the run's database refusing
connections for 3 s. The accounting then checks every job's set in storage, stored results,
the agents' job records and logs (one run per job, one job at a time, submission order) and
the cause of every FAILED job; any violation makes the run exit 1."""
FINDING = """\
Fixed finding (`workflows/job.py`, `_call`): an agent call whose tries outlasted its local
activity's start-to-close timeout used to fail the job with a bare "Local Activity timed
out", naming neither the call nor the agent, because that timeout spans all the in-worker
tries. The timeout now fits every try, so such a job fails with the last try's own error, e.g.
`get_job_status failed: timed out calling ...` (tests/orchestration/test_polling.py).
`python -m chaos.run --away-by-pause` freezes an agent past its retry budget to exercise it."""
console = Console()


@dataclass
class Options:
    agents: int = 4
    jobs: int = 300
    seconds: float = 150.0
    seed: int = 1
    postgres: bool = False
    drain_seconds: float = 300.0
    root: Path | None = None
    away_by_pause: bool = False


@dataclass
class Report:
    options: Options
    accounting: Accounting
    faults: Counter[Fault]
    elapsed: float
    root: Path
    budget: float
    notes: list[str] = field(default_factory=list)


async def chaos_run(opts: Options, timing: Timing | None = None) -> Report:
    """One bounded run; the report says whether the accounting held."""
    timing = timing or Timing()
    root = opts.root or Path(tempfile.mkdtemp(prefix="ruckus-chaos-"))
    rng = random.Random(opts.seed)
    stack = ChaosStack(root, opts.agents, timing, opts.postgres)
    began = time.monotonic()
    console.print(f"chaos run under {root}: starting the stack")
    try:
        await stack.start()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            experiments = await _setup(http, stack)
            driver = FaultDriver(stack, opts.seconds, rng, opts.away_by_pause)
            console.print(
                f"submitting {opts.jobs} jobs to {opts.agents} agents over {opts.seconds:g} s "
                f"while injecting faults (agent retry budget {timing.budget():.1f} s)"
            )
            forger = Forger(http, random.Random(opts.seed + 2))
            (submitted, refused), _, _ = await asyncio.gather(
                _submit(http, stack, experiments, opts, random.Random(opts.seed + 1)),
                driver.run(),
                forger.run(opts.seconds),
            )
        storage = create_storage(stack.storage_settings())
        await storage.initialize()
        try:
            console.print("every fault injected; waiting for every job to end")
            await _drain(storage, stack, submitted, opts.drain_seconds)
            agents = {
                stack.agent_ids[i]: AgentSide.read(stack.agent_dir(i), stack.agent_log(i))
                for i in range(opts.agents)
            }
            accounting = await account(
                storage, submitted, agents, driver.injections, timing.silent_budget(), refused
            )
            forger.account(accounting)
        finally:
            await storage.close()
    finally:
        await stack.stop()
    return Report(
        opts, accounting, driver.counts(), time.monotonic() - began, root, timing.budget()
    )


async def _setup(http: httpx.AsyncClient, stack: ChaosStack) -> list[str]:
    for i in range(len(stack.agents)):
        r = await http.post("/api/v1/agents/register", json={"agent_url": stack.agent_url(i)})
        r.raise_for_status()
    experiments = []
    for seconds in DURATIONS:
        spec = {
            "name": f"chaos {seconds:g} s",
            "model": "none",
            "task": {
                "name": "matmul",
                "type": "compute_benchmark",
                "params": {
                    "matrix_sizes": [32],
                    "precision_types": ["fp32"],
                    "iterations": 1,
                    "min_duration_seconds": seconds,
                },
            },
        }
        r = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
        r.raise_for_status()
        experiments.append(str(r.json()["experiment_id"]))
    return experiments


async def _submit(
    http: httpx.AsyncClient,
    stack: ChaosStack,
    experiments: list[str],
    opts: Options,
    rng: random.Random,
) -> tuple[list[Submitted], int]:
    """Jobs paced over the run; a submission refused (API down, 503) or whose answer was lost is
    tried again with its Idempotency-Key, as a careful client does."""
    submitted: list[Submitted] = []
    refused = 0
    gap = 0.85 * opts.seconds / max(1, opts.jobs)
    began = time.monotonic()
    for n in range(opts.jobs):
        await asyncio.sleep(max(0.0, began + n * gap - time.monotonic()))
        agent = rng.choice(stack.agent_ids)
        body = {"experiment_id": rng.choice(experiments), "agent_id": agent}
        key = f"chaos-{opts.seed}-{n}"
        deadline = time.monotonic() + SUBMIT_DEADLINE
        while True:
            try:
                r = await http.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": key})
                if r.status_code == 201:
                    submitted.append(Submitted(str(r.json()["job_id"]), agent, key))
                    break
                if r.status_code < 500:
                    raise RuntimeError(f"job submission refused: {r.status_code} {r.text}")
            except httpx.TransportError:
                pass
            refused += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"no job accepted for {SUBMIT_DEADLINE:g} s")
            await asyncio.sleep(0.3)
    return submitted, refused


class Forger:
    """Forged end-of-job notifications (no token, a wrong one) for jobs that run: none may be
    accepted, and none may end a job."""

    def __init__(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        self._http = http
        self._rng = rng
        self.sent = 0
        self.accepted: list[str] = []

    async def run(self, seconds: float) -> None:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            await asyncio.sleep(self._rng.uniform(0.2, 1.0))
            job_id = await self._recent_job() or f"job_{self._rng.randrange(10**8):08d}"
            token = None if self._rng.random() < 0.5 else "0" * 64
            forged = {"job_id": job_id, "status": {"status": "completed", "message": "forged"}}
            try:
                r = await self._http.post(
                    f"/api/v1/jobs/{job_id}/notify",
                    json=forged,
                    params={"token": token} if token else {},
                )
            except httpx.TransportError:
                continue  # the API is being restarted by a fault
            self.sent += 1
            if r.status_code not in (403, 503):
                self.accepted.append(f"{job_id}: HTTP {r.status_code}")

    async def _recent_job(self) -> str | None:
        try:
            r = await self._http.get("/api/v1/jobs", params={"status": "running", "limit": 5})
            jobs = [j for js in r.json().get("jobs", {}).values() for j in js]
        except (httpx.HTTPError, ValueError):
            return None
        return str(self._rng.choice(jobs)["job_id"]) if jobs else None

    def account(self, acc: Accounting) -> None:
        acc.forged_sent = self.sent
        for accepted in self.accepted:
            acc.fail(f"a forged notification was accepted: {accepted}")


async def _drain(
    storage: StorageBackend, stack: ChaosStack, submitted: list[Submitted], seconds: float
) -> None:
    """Until every submitted job is terminal and every agent idle (or the deadline passes)."""
    pending = {s.job_id for s in submitted}

    async def all_ended() -> bool:
        for agent_id in stack.agent_ids:
            for job in await storage.list_jobs(agent_id=agent_id, limit=1_000_000):
                if job.status.status.is_terminal:
                    pending.discard(job.job_id)
        return not pending

    try:
        await wait_for(all_ended, seconds, "every job to end")
    except RuntimeError:
        console.print(f"[red]{len(pending)} jobs did not end within {seconds:g} s[/]")
        return  # the accounting names each of them
    for i in range(len(stack.agents)):
        await wait_for(lambda i=i: _idle(stack, i), 30, f"{stack.agent_ids[i]} to be idle")


async def _idle(stack: ChaosStack, i: int) -> bool:
    return await stack.agent_current_job(i) is None


# Reporting


def rows(report: Report) -> list[tuple[str, str]]:
    acc = report.accounting
    out = [
        ("jobs submitted (accepted by the API)", str(acc.submitted)),
        ("jobs completed (results stored, run once)", str(acc.completed)),
    ]
    for cause, n in sorted(acc.failed_by_cause.items()):
        out.append((f"jobs failed: {cause}", str(n)))
    out += [
        ("submissions refused while a part was down (retried)", str(acc.refused_submissions)),
        ("refused submissions left as a FAILED record", str(acc.refused_recorded)),
        ("jobs the agents executed", str(acc.executed_by_agents)),
        ("jobs sent again after their agent restarted", str(acc.resent)),
        ("forged notifications sent (none accepted, or the run breaks)", str(acc.forged_sent)),
    ]
    for fault in Fault:
        if fault in report.faults:
            out.append((f"faults: {fault}", str(report.faults[fault])))
    out += [
        ("agent retry budget (s)", f"{report.budget:.1f}"),
        ("wall time (s)", f"{report.elapsed:.0f}"),
        ("accounting", "holds" if acc.holds else f"BROKEN ({len(acc.violations)} violations)"),
    ]
    return out


def section(report: Report, command: str) -> str:
    lines = [
        HEADING,
        "",
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; "
        f"storage {'PostgreSQL' if report.options.postgres else 'SQLite'}, "
        f"seed {report.options.seed}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        *(f"| {name.strip()} | {value} |" for name, value in rows(report)),
        "",
        ABOUT,
        "",
        FINDING,
        "",
    ]
    if report.accounting.violations:
        lines += ["Violations:", "", *(f"- {v}" for v in report.accounting.violations), ""]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the chaos section of the results file (or append it), leaving the rest alone."""
    current = path.read_text() if path.exists() else ""
    start = current.find(HEADING)
    if start < 0:
        joined = current.rstrip("\n") + "\n\n" + text if current.strip() else text
    else:
        end = current.find("\n## ", start + len(HEADING))
        tail = current[end + 1 :] if end >= 0 else ""
        joined = current[:start] + text + ("\n" + tail if tail else "")
    path.write_text(joined)


def print_report(report: Report) -> None:
    table = Table(title="Chaos run")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows(report):
        table.add_row(name, value)
    console.print(table)
    for violation in report.accounting.violations:
        console.print(f"[red]violation:[/] {violation}", soft_wrap=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=Options.agents)
    parser.add_argument("--jobs", type=int, default=Options.jobs)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="PostgreSQL storage at 127.0.0.1:5432, so storage outages are injected too",
    )
    parser.add_argument(
        "--away-by-pause",
        action="store_true",
        help="make an agent go away past the budget by SIGSTOP rather than closing its port",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    opts = Options(args.agents, args.jobs, args.seconds, args.seed, args.postgres)
    opts.away_by_pause = args.away_by_pause
    report = asyncio.run(chaos_run(opts))
    print_report(report)
    command = "make chaos  # python -m chaos.run " + " ".join(sys.argv[1:])
    write_section(args.out, section(report, command.strip()))
    console.print(f"written to {args.out}; logs under {report.root}")
    sys.exit(0 if report.accounting.holds else 1)


if __name__ == "__main__":
    main()
