"""Placement: which agents can run an experiment (capabilities, labels, availability) and, of
those, the one with the fewest running and queued jobs."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from api.agent_manager import AgentManager
from api.schemas import LabelSelector, Placement
from common.models import AgentStatusEnum, ExperimentSpec, RegisteredAgentInfo
from common.requirements import requirements, unfit_reason
from common.storage import StorageBackend


def selector_reason(agent: RegisteredAgentInfo, selector: LabelSelector | None) -> str | None:
    """Why the selector leaves the agent out, or None."""
    if selector is None:
        return None
    missing = {k: v for k, v in selector.labels.items() if agent.labels.get(k) != v}
    if not missing:
        return None
    wanted = ", ".join(f"{k}={v}" for k, v in missing.items())
    has = ", ".join(f"{k}={v}" for k, v in sorted(agent.labels.items())) or "no labels"
    return f"agent {agent.agent_id} does not have the labels {wanted} (it has {has})"


async def reasons(
    agents: AgentManager,
    spec: ExperimentSpec,
    candidates: list[RegisteredAgentInfo],
    selector: LabelSelector | None = None,
) -> dict[str, str | None]:
    """Each candidate's reason it cannot run the experiment now (None: it can), in order."""
    needs = requirements(spec)
    found: dict[str, str | None] = {}
    for agent in candidates:
        reason = selector_reason(agent, selector) or unfit_reason(agent, needs)
        if reason is None and agent.status is AgentStatusEnum.UNAVAILABLE:
            # Recorded unavailable: ask again, so a job is not refused on old news.
            live = await agents.refresh_if_unavailable(agent.agent_id)
            if live is None or live.status is AgentStatusEnum.UNAVAILABLE:
                reason = f"agent {agent.agent_id} is unavailable (it does not answer)"
        found[agent.agent_id] = reason
    return found


async def place(
    storage: StorageBackend,
    agents: AgentManager,
    spec: ExperimentSpec,
    selector: LabelSelector | None,
) -> tuple[RegisteredAgentInfo, Placement]:
    """The fitting agent with the fewest unfinished jobs; 422 with every agent's reason when
    none fits."""
    registered = await storage.list_agents()
    why = await reasons(agents, spec, registered, selector)
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
    listed = "; ".join(r for r in why.values() if r) or "no agent is registered"
    raise unplaceable(f"no agent can run experiment {spec.id}: {listed}")


def unplaceable(message: str, field: str = "agent_id") -> RequestValidationError:
    """A 422 naming the request's field that could not be satisfied."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )
