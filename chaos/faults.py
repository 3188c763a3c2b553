"""The fault driver: at seeded random moments, break one part of the stack and bring it back."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from chaos.stack import ChaosStack
from common.models import utcnow


class Fault(StrEnum):
    WORKER_KILL = "worker SIGKILL + restart"
    TEMPORAL_KILL = "Temporal dev server SIGKILL + restart"
    API_RESTART = "API process restart"
    AGENT_KILL = "agent SIGKILL + restart"
    AGENT_PAUSE = "agent unreachable briefly (SIGSTOP, SIGCONT)"
    AGENT_AWAY = "agent away past the retry budget (killed, back later)"
    STORAGE_DOWN = "storage database unavailable"


# The long absence makes jobs fail on purpose; one per 150 s keeps most jobs running.
AWAY_EVERY_SECONDS = 150.0
MEAN_GAP_SECONDS = 8.0
STORAGE_DOWN_SECONDS = 3.0
AWAY_MARGIN_SECONDS = 6.0


@dataclass
class Injection:
    """One fault as it happened: when, on what, and how long the part was gone."""

    fault: Fault
    target: str
    started: datetime
    ended: datetime
    # For AGENT_AWAY: the job the agent was running when it went away, if any.
    job_in_flight: str | None = None
    # For AGENT_AWAY: frozen (SIGSTOP) rather than killed, so its job in flight lives on.
    frozen: bool = False


@dataclass
class FaultDriver:
    stack: ChaosStack
    seconds: float
    rng: random.Random
    # Away by SIGSTOP instead of a closed port: reproduces the "Local Activity timed out" finding.
    away_by_pause: bool = False
    injections: list[Injection] = field(default_factory=list)
    _started: datetime = field(default_factory=utcnow)

    def plan(self) -> list[tuple[float, Fault]]:
        """Every kind at least once, then more of the cheap ones, at random moments."""
        kinds = [f for f in Fault if f is not Fault.STORAGE_DOWN or self.stack.database]
        aways = max(1, int(self.seconds // AWAY_EVERY_SECONDS))
        others = [f for f in kinds if f is not Fault.AGENT_AWAY]
        planned = [*kinds, *[Fault.AGENT_AWAY] * (aways - 1)]
        total = max(len(planned), int(self.seconds / MEAN_GAP_SECONDS))
        planned += [self.rng.choice(others) for _ in range(total - len(planned))]
        self.rng.shuffle(planned)
        moments = sorted(self.rng.uniform(0.05, 0.85) * self.seconds for _ in planned)
        return list(zip(moments, planned, strict=True))

    async def run(self) -> None:
        """Inject the plan one fault at a time; each part is back before the next fault."""
        began = time.monotonic()
        for moment, fault in self.plan():
            delay = moment - (time.monotonic() - began)
            await asyncio.sleep(max(1.0, delay))
            await self.inject(fault)

    def counts(self) -> Counter[Fault]:
        return Counter(i.fault for i in self.injections)

    async def inject(self, fault: Fault) -> None:
        self._started = utcnow()
        target, in_flight = await self._break(fault)
        frozen = fault is Fault.AGENT_AWAY and self.away_by_pause
        done = Injection(fault, target, self._started, utcnow(), in_flight, frozen)
        self.injections.append(done)
        with (self.stack.root / "faults.log").open("a") as log:
            log.write(f"{done.started.isoformat()} {done.ended.isoformat()} {fault} {target}\n")

    async def _break(self, fault: Fault) -> tuple[str, str | None]:
        s = self.stack
        if fault is Fault.WORKER_KILL:
            await s.kill(s.worker)
            await s.start_worker()
            return "worker", None
        if fault is Fault.TEMPORAL_KILL:
            await s.kill(s.temporal)
            await s.start_temporal()
            return "temporal", None
        if fault is Fault.API_RESTART:
            await s.restart_api()
            return "api", None
        if fault is Fault.STORAGE_DOWN:
            assert s.database is not None
            await s.database.block()
            try:
                await asyncio.sleep(STORAGE_DOWN_SECONDS)
            finally:
                await s.database.unblock()
            return s.database.name, None
        if fault is Fault.AGENT_KILL:
            i = self.rng.randrange(len(s.agents))
            await s.kill(s.agents[i])
            await s.start_agent(i)
            return s.agent_ids[i], None
        if fault is Fault.AGENT_PAUSE:
            i = self.rng.randrange(len(s.agents))
            await self._away(i, self.rng.uniform(1.0, 2.5))
            return s.agent_ids[i], None
        i, job = await self._busy_agent()
        if self.away_by_pause:
            await self._away(i, s.timing.silent_budget() + AWAY_MARGIN_SECONDS)
            return s.agent_ids[i], job
        self._started = utcnow()
        await s.kill(s.agents[i])
        await asyncio.sleep(s.timing.budget() + AWAY_MARGIN_SECONDS)
        await s.start_agent(i)
        return s.agent_ids[i], job

    async def _away(self, i: int, seconds: float) -> None:
        self._started = utcnow()
        self.stack.pause_agent(i)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.stack.resume_agent(i)

    async def _busy_agent(self) -> tuple[int, str | None]:
        """An agent running a job now, so its absence costs that job; any agent otherwise."""
        order = list(range(len(self.stack.agents)))
        self.rng.shuffle(order)
        for i in order:
            with contextlib.suppress(Exception):
                job = await self.stack.agent_current_job(i)
                if job:
                    return i, job
        return order[0], None
