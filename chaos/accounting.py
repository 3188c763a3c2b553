"""The accounting after a chaos run: what must hold exactly, checked from storage and the agents."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from agent.store import JobRecord
from api.job_manager import NOT_STARTED
from chaos.faults import Fault, Injection
from common.models import JobInfo, JobStatusEnum
from common.storage import NotFoundError, StorageBackend

ENDED_LINE = re.compile(r"\bjob (\S+) ended\b")
AGENT_RESTARTED = "the agent restarted while this job was running"
AGENT_LOST_JOB = "agent lost the job"
UNREACHABLE = ("timed out calling", "cannot reach")
REFUSED_AT_SUBMISSION = NOT_STARTED

# Failure causes the run expects; any other FAILED job breaks the accounting.
CAUSE_AWAY = "agent away past the retry budget"
CAUSE_RESTART = "agent restarted while the job ran"
CAUSE_LOST = "agent killed before it saved the job"


@dataclass
class Submitted:
    job_id: str
    agent_id: str
    # Its Idempotency-Key: every try of one submission carries it. A job its tries made but no
    # answer acknowledged would be a stored job outside the submitted ones (_check_sets).
    key: str = ""


@dataclass
class AgentSide:
    """What one agent itself says it ran: its job records and its log's "job X ended" lines."""

    records: dict[str, JobRecord]
    ended: Counter[str]

    @classmethod
    def read(cls, data_dir: Path, log: Path) -> AgentSide:
        records = {}
        for path in sorted((data_dir / "jobs").glob("*.json")):
            try:
                record = JobRecord.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValidationError):
                continue
            records[record.job_id] = record
        text = log.read_text(errors="replace") if log.exists() else ""
        return cls(records, Counter(ENDED_LINE.findall(text)))


@dataclass
class Accounting:
    submitted: int = 0
    completed: int = 0
    failed_by_cause: Counter[str] = field(default_factory=Counter)
    refused_submissions: int = 0
    refused_recorded: int = 0
    executed_by_agents: int = 0
    # Jobs sent to their agent again because it restarted without them.
    resent: int = 0
    forged_sent: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.violations

    def fail(self, message: str) -> None:
        self.violations.append(message)


async def account(
    storage: StorageBackend,
    submitted: list[Submitted],
    agents: dict[str, AgentSide],
    injections: list[Injection],
    budget: float,
    refused_submissions: int,
) -> Accounting:
    acc = Accounting(submitted=len(submitted), refused_submissions=refused_submissions)
    wanted = {s.job_id: s for s in submitted}
    sets, jobs = await _sets(storage, list(agents))
    _check_sets(acc, wanted, sets, jobs)
    _check_agents_ran_each_job_once(acc, agents, wanted)
    acc.resent = sum(1 for job in jobs.values() if (job.status.attempt or 1) > 1)
    for job_id, names in sets.items():
        if names != ["completed"] or job_id not in wanted:
            continue
        acc.completed += 1
        await _check_completed(acc, storage, jobs[job_id], agents[jobs[job_id].agent_id])
    for agent_id, side in agents.items():
        _check_one_at_a_time(acc, agent_id, side)
        _check_order(acc, agent_id, side, jobs)
    _check_failures(acc, wanted, sets, jobs, injections, budget)
    return acc


async def _sets(
    storage: StorageBackend, agent_ids: list[str]
) -> tuple[dict[str, list[str]], dict[str, JobInfo]]:
    """Which of the four sets hold each job, read through the storage's per-agent set calls."""
    sets: defaultdict[str, list[str]] = defaultdict(list)
    jobs: dict[str, JobInfo] = {}
    for agent_id in agent_ids:
        running = await storage.get_running_job(agent_id)
        for name, members in (
            ("running", [running] if running else []),
            ("queued", await storage.get_queued_jobs(agent_id)),
            ("completed", await storage.get_completed_jobs(agent_id)),
            ("failed", await storage.get_failed_jobs(agent_id)),
        ):
            for job in members:
                sets[job.job_id].append(name)
                jobs[job.job_id] = job
    return dict(sets), jobs


def _check_sets(
    acc: Accounting,
    wanted: dict[str, Submitted],
    sets: dict[str, list[str]],
    jobs: dict[str, JobInfo],
) -> None:
    for job_id, sub in wanted.items():
        names = sets.get(job_id, [])
        if len(names) != 1:
            acc.fail(f"job {job_id} ({sub.agent_id}) is in {len(names)} sets: {names}")
        elif names[0] not in ("completed", "failed"):
            status = jobs[job_id].status
            acc.fail(f"job {job_id} did not end: {names[0]} ({status.status}: {status.message})")
        elif jobs[job_id].agent_id != sub.agent_id:
            acc.fail(f"job {job_id} was submitted to {sub.agent_id}, stored for another agent")
    for job_id, names in sets.items():
        if job_id in wanted:
            continue
        job = jobs[job_id]
        # A submission answered 503 leaves a FAILED record that says why; nothing else may exist.
        if names == ["failed"] and REFUSED_AT_SUBMISSION in job.status.message:
            acc.refused_recorded += 1
        else:
            acc.fail(
                f"job {job_id} is stored ({names}, {job.status.status}: {job.status.message}) "
                "but its submission was never acknowledged"
            )


def _check_agents_ran_each_job_once(
    acc: Accounting, agents: dict[str, AgentSide], wanted: dict[str, Submitted]
) -> None:
    holders: defaultdict[str, list[str]] = defaultdict(list)
    for agent_id, side in agents.items():
        for job_id in side.records:
            holders[job_id].append(agent_id)
        for job_id, times in side.ended.items():
            if times > 1:
                acc.fail(f"job {job_id} was executed {times} times by {agent_id} (its log)")
    acc.executed_by_agents = len(holders)
    for job_id, held_by in holders.items():
        if len(held_by) > 1:
            acc.fail(f"job {job_id} was executed by several agents: {held_by}")
        if job_id not in wanted:
            acc.fail(f"job {job_id} ran on {held_by[0]} although its submission was refused")
        elif wanted[job_id].agent_id != held_by[0]:
            acc.fail(f"job {job_id} ran on {held_by[0]}, not on {wanted[job_id].agent_id}")


async def _check_completed(
    acc: Accounting, storage: StorageBackend, job: JobInfo, side: AgentSide
) -> None:
    try:
        results = await storage.get_job_results(job.job_id)
    except NotFoundError:
        acc.fail(f"job {job.job_id} is COMPLETED but has no stored results")
        return
    if results.get("status") != JobStatusEnum.COMPLETED.value:
        acc.fail(
            f"job {job.job_id} is COMPLETED but its stored results say {results.get('status')}"
        )
    record = side.records.get(job.job_id)
    if record is None or record.status.status is not JobStatusEnum.COMPLETED:
        acc.fail(f"job {job.job_id} is COMPLETED but its agent has no completed record of it")
    if side.ended[job.job_id] != 1:
        acc.fail(
            f"job {job.job_id} is COMPLETED but its agent logged its end "
            f"{side.ended[job.job_id]} times"
        )


def _interval(record: JobRecord) -> tuple[datetime, datetime] | None:
    if record.result is None or record.result.completed_at is None:
        return None
    return record.result.started_at or record.accepted_at, record.result.completed_at


def _check_one_at_a_time(acc: Accounting, agent_id: str, side: AgentSide) -> None:
    spans = []
    for job_id, record in side.records.items():
        span = _interval(record)
        if span is None:
            acc.fail(f"{agent_id} holds job {job_id} unfinished ({record.status.status})")
        else:
            spans.append((*span, job_id))
    spans.sort()
    for (_, end, before), (start, _, after) in itertools.pairwise(spans):
        if start < end:
            acc.fail(f"{agent_id} ran {after} (from {start}) while {before} ran (until {end})")


def _check_order(acc: Accounting, agent_id: str, side: AgentSide, jobs: dict[str, JobInfo]) -> None:
    ran = [r for r in side.records.values() if r.job_id in jobs and _interval(r) is not None]
    by_start = [r.job_id for r in sorted(ran, key=lambda r: _interval(r) or ())]
    by_creation = sorted(by_start, key=lambda j: (jobs[j].created_time, j))
    if by_start != by_creation:
        first = next(
            i for i, (a, b) in enumerate(zip(by_start, by_creation, strict=True)) if a != b
        )
        acc.fail(
            f"{agent_id} did not run its jobs in submission order: at position {first} it ran "
            f"{by_start[first]}, submitted after {by_creation[first]}"
        )


def _check_failures(
    acc: Accounting,
    wanted: dict[str, Submitted],
    sets: dict[str, list[str]],
    jobs: dict[str, JobInfo],
    injections: list[Injection],
    budget: float,
) -> None:
    aways = [i for i in injections if i.fault is Fault.AGENT_AWAY]
    kills = [i for i in injections if i.fault in (Fault.AGENT_KILL, Fault.AGENT_AWAY)]
    # After the agent is back, the call whose tries were under way may still run out.
    late = timedelta(seconds=budget + 10)
    for job_id in wanted:
        if sets.get(job_id) != ["failed"]:
            continue
        job = jobs[job_id]
        status, message, at = job.status.status, job.status.message, job.status.timestamp
        cause = None
        if status is JobStatusEnum.FAILED:
            if AGENT_RESTARTED in message:
                cause = CAUSE_RESTART
            elif message.startswith(AGENT_LOST_JOB) and any(
                k.target == job.agent_id and k.started <= at for k in kills
            ):
                cause = CAUSE_LOST
            elif any(u in message for u in UNREACHABLE) and any(
                a.target == job.agent_id and a.started <= at <= a.ended + late for a in aways
            ):
                cause = CAUSE_AWAY
        if cause is None:
            acc.failed_by_cause["unexplained"] += 1
            acc.fail(f"job {job_id} ended {status} for no injected cause: {message}")
        else:
            acc.failed_by_cause[cause] += 1
    for away in aways:
        if away.frozen or away.job_in_flight is None or away.job_in_flight not in jobs:
            continue
        job = jobs[away.job_in_flight]
        # The run in flight died with its agent. Unless a call fell in the absence (a safety
        # poll may not), the job is noticed lost once the agent is back and is sent again: only
        # that later attempt may complete it.
        if (
            job.status.status is JobStatusEnum.COMPLETED
            and job.status.timestamp > away.started
            and (job.status.attempt or 1) == 1
        ):
            acc.fail(
                f"job {job.job_id} completed at {job.status.timestamp} on its first attempt "
                f"although its agent {job.agent_id} was killed at {away.started}"
            )
