"""Our server driving an agent of the existing Ruckus: its status without `timestamp`, its
own experiment id and extra fields in results, a cancel that answers 500."""

from __future__ import annotations

from datetime import datetime

import httpx

from common.models import JobStatusEnum
from tests.api.conftest import create_experiment, register, wait_job
from tests.support.stack import FakeAgent


async def test_a_job_on_an_existing_agent_is_stored_under_our_ids_with_the_agents_times(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(existing_style=True, job_duration=0.5)
    agent_id = await register(http, fake_agent.url)
    experiment_id = await create_experiment(http)
    created = await http.post(
        "/api/v1/jobs", json={"experiment_id": experiment_id, "agent_id": agent_id}
    )
    job_id = created.json()["job_id"]
    done = await wait_job(http, job_id, JobStatusEnum.COMPLETED)

    result = (await http.get(f"/api/v1/results/{job_id}")).json()["result"]
    assert result["job_id"] == job_id
    assert result["experiment_id"] == experiment_id
    assert result["agent_id"] == agent_id
    assert result["agent_experiment_id"] == f"derived-{experiment_id}"  # kept, not lost
    assert result["agent_version"] == "0.9.0"  # their extra fields stay
    listed = (await http.get("/api/v1/results", params={"experiment_id": experiment_id})).json()
    assert [r["job_id"] for r in listed["results"]] == [job_id]

    # The job ended when the agent says, not when the server happened to ask.
    async with httpx.AsyncClient() as control:
        agent_jobs = (await control.get(f"{fake_agent.url}/control/jobs")).json()
    ended_on_agent = datetime.fromisoformat(agent_jobs[job_id]["finishes_at"])
    assert done.status.timestamp == ended_on_agent


async def running_job(http: httpx.AsyncClient, agent: FakeAgent) -> tuple[dict[str, str], str]:
    """A job running on `agent` as an existing agent, until told to end; its submission body
    and id."""
    await agent.control(existing_style=True, job_duration=None)
    agent_id = await register(http, agent.url)
    experiment_id = await create_experiment(http)
    body = {"experiment_id": experiment_id, "agent_id": agent_id}
    job_id = (await http.post("/api/v1/jobs", json=body)).json()["job_id"]
    await wait_job(http, job_id, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)
    return body, job_id


async def test_a_cancel_the_existing_agent_answers_500_still_ends_the_job(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    body, job_id = await running_job(http, fake_agent)
    assert (await http.delete(f"/api/v1/jobs/{job_id}")).status_code == 204
    await wait_job(http, job_id, JobStatusEnum.CANCELLED)
    # The agent refused to stop it: the next job waits for the agent, not for ever.
    following = (await http.post("/api/v1/jobs", json=body)).json()["job_id"]
    waiting = await wait_job(http, following, JobStatusEnum.QUEUED)
    assert waiting.status.message in ("waiting for the agent", "agent busy with other work")
    await fake_agent.control(existing_style=True, job_duration=0.1)
    await fake_agent.finish(job_id, "cancelled")
    await wait_job(http, following, JobStatusEnum.COMPLETED)
    assert (await http.get(f"/api/v1/jobs/{job_id}")).json()["status"]["status"] == "cancelled"


async def test_an_existing_agent_is_never_asked_for_a_jobs_log(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    # Existing agents keep no logs and say nothing of them in their info.
    _, job_id = await running_job(http, fake_agent)
    live = (await http.get(f"/api/v1/jobs/{job_id}/logs")).json()
    assert (live["text"], live["next_offset"], live["complete"]) == ("", 0, False)

    await fake_agent.finish(job_id)
    await wait_job(http, job_id, JobStatusEnum.COMPLETED)
    ended = (await http.get(f"/api/v1/jobs/{job_id}/logs")).json()
    assert (ended["text"], ended["complete"]) == ("", True)
    assert (await http.get(f"/api/v1/results/{job_id}")).status_code == 200
    asked = [e for e in await fake_agent.log() if e["call"] == "logs"]
    assert asked == []
