"""Placement: which agents can run an experiment (labels, availability, what it needs) and,
of those, the one with the fewest running and queued jobs. Jobs and runs both use it."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.agent_manager import AgentManager
from api.schemas import Placement
from common.models import AgentStatusEnum, ExperimentSpec, RegisteredAgentInfo
from common.requirements import Requirements, requirements, unfit_reason
from common.runs import LabelSelector
from common.storage import StorageBackend


def needs_of(spec: ExperimentSpec) -> Requirements | None:
    """What the experiment needs; None for one stored before params were checked (its jobs
    say themselves why they cannot run)."""
    try:
        return requirements(spec)
    except ValidationError:
        return None


def fit_reason(
    agent: RegisteredAgentInfo, needs: Requirements | None, selector: LabelSelector | None
) -> str | None:
    """Why the agent cannot take the experiment now (a sentence), or None."""
    if agent.status is AgentStatusEnum.UNAVAILABLE:
        return f"agent {agent.agent_id} is unavailable (it does not answer)"
    if selector is not None:
        missing = {k: v for k, v in selector.labels.items() if agent.labels.get(k) != v}
        if missing:
            wanted = ", ".join(f"{k}={v}" for k, v in missing.items())
            has = ", ".join(f"{k}={v}" for k, v in sorted(agent.labels.items())) or "no labels"
            return f"agent {agent.agent_id} does not have the labels {wanted} (it has {has})"
    return None if needs is None else unfit_reason(agent, needs)


async def candidates(
    agents: AgentManager, registered: list[RegisteredAgentInfo]
) -> list[RegisteredAgentInfo]:
    """The agents as they are: one last seen unavailable is asked again, so nothing is refused
    on old news."""
    current = []
    for agent in registered:
        if agent.status is AgentStatusEnum.UNAVAILABLE:
            refreshed = await agents.refresh_if_unavailable(agent.agent_id)
            if refreshed is None:
                continue  # unregistered meanwhile
            agent = refreshed
        current.append(agent)
    return current


async def place(
    storage: StorageBackend,
    agents: AgentManager,
    spec: ExperimentSpec,
    selector: LabelSelector | None,
) -> tuple[RegisteredAgentInfo, Placement]:
    """The fitting agent with the fewest unfinished jobs; a 422 with each agent's reason when
    none fits."""
    needs = needs_of(spec)
    registered = await candidates(agents, await storage.list_agents())
    why = {a.agent_id: fit_reason(a, needs, selector) for a in registered}
    load = await storage.unfinished_job_counts()
    fit = [a for a in registered if why[a.agent_id] is None]
    fit.sort(key=lambda a: (load.get(a.agent_id, 0), a.registered_at, a.agent_id))
    for agent in fit:
        # Asked now, not as last recorded: a stopped agent is never chosen.
        live = await agents.live_status(agent)
        if live.status in (AgentStatusEnum.UNAVAILABLE, AgentStatusEnum.ERROR):
            why[agent.agent_id] = f"agent {agent.agent_id} is {live.status.value}"
            continue
        jobs = load.get(agent.agent_id, 0)
        reason = (
            f"of {len(fit)} agent{'s' if len(fit) != 1 else ''} that can run it, the one with "
            f"the fewest running and queued jobs ({jobs})"
        )
        return agent, Placement(agent_id=agent.agent_id, reason=reason)
    unfit = {agent_id: reason for agent_id, reason in why.items() if reason is not None}
    raise no_fitting_agent(unfit, "selector" if selector else "agent_id", spec.id)


def no_fitting_agent(
    reasons: Mapping[str, str], field: str, experiment_id: str
) -> RequestValidationError:
    """A 422 in FastAPI's shape: one entry per agent that cannot take the experiment, with
    why; nothing was started."""
    errors = [
        {"type": "value_error", "loc": ("body", field), "msg": why, "input": agent_id}
        for agent_id, why in reasons.items()
    ]
    if not errors:
        message = f"no agent can run experiment {experiment_id}: no agent is registered"
        errors = [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    return RequestValidationError(errors)
