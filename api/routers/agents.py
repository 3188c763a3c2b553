"""/api/v1/agents: register agents by URL (or they register themselves), list them, status."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import AgentManagerDep
from api.errors import error_responses
from api.routers import collection_route
from api.schemas import (
    AgentIdPath,
    AgentInfoAnswer,
    AgentListResponse,
    AgentStatusAnswer,
    AgentStatusListResponse,
    RegisterAgentRequest,
    RegisterAgentResponse,
    UnregisterAgentRequest,
    UnregisterAgentResponse,
)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.post(
    "/register",
    response_model=RegisterAgentResponse,
    responses=error_responses(400, 502),
)
async def register_agent(
    body: RegisterAgentRequest, manager: AgentManagerDep
) -> RegisterAgentResponse:
    """Register the agent at `agent_url`: the server reads its `/api/v1/info`.

    The agent's own id is used. An id registered already (the agent restarted, or moved to
    another URL) is updated: its URL, info and labels; its registration time and jobs are kept.
    Unreachable or failing agent: 503; an answer that is not a Ruckus agent's: 502.
    """
    agent = await manager.register_agent(body.agent_url)
    return RegisterAgentResponse(
        agent_id=agent.agent_id, registered_at=agent.registered_at, agent_url=agent.agent_url
    )


@router.post(
    "/unregister",
    response_model=UnregisterAgentResponse,
    responses=error_responses(400, 404),
)
async def unregister_agent(
    body: UnregisterAgentRequest, manager: AgentManagerDep
) -> UnregisterAgentResponse:
    """Forget an agent: its queued and running jobs are cancelled, its job history is kept."""
    cancelled = await manager.unregister_agent(body.agent_id)
    return UnregisterAgentResponse(agent_id=body.agent_id, cancelled_jobs=cancelled)


@collection_route(router, "GET", "/", response_model=AgentListResponse, responses=error_responses())
async def list_agents(manager: AgentManagerDep) -> AgentListResponse:
    """Every registered agent with its info and last-seen status, oldest registration first."""
    return AgentListResponse(agents=await manager.list_agents())


@router.get("/status", response_model=AgentStatusListResponse, responses=error_responses())
async def agents_status(manager: AgentManagerDep) -> AgentStatusListResponse:
    """Every agent's live status, asked concurrently; one that does not answer is `unavailable`."""
    return AgentStatusListResponse(agents=await manager.list_agent_status())


@router.get("/{agent_id}/info", response_model=AgentInfoAnswer, responses=error_responses(404))
async def agent_info(agent_id: AgentIdPath, manager: AgentManagerDep) -> AgentInfoAnswer:
    """What the server knows of the agent: its info, URL, registration time, last-seen status."""
    return AgentInfoAnswer(agent=await manager.get_agent_info(agent_id))


@router.get("/{agent_id}/status", response_model=AgentStatusAnswer, responses=error_responses(404))
async def agent_status(agent_id: AgentIdPath, manager: AgentManagerDep) -> AgentStatusAnswer:
    """The agent's live status; `unavailable` when it does not answer in time."""
    return AgentStatusAnswer(agent=await manager.get_agent_status(agent_id))
