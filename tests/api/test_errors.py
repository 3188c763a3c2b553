"""Every error answer says what is wrong in `detail`, with the status the API promises."""

from __future__ import annotations

import httpx

from common.models import JobStatusEnum
from tests.api.conftest import (
    create_experiment,
    create_job,
    experiment_body,
    register,
    unique,
    wait_job,
)
from tests.support.stack import FakeAgent, free_port

UNFINISHED = (JobStatusEnum.QUEUED, JobStatusEnum.ASSIGNED, JobStatusEnum.RUNNING)


async def test_job_creation_names_the_unknown_experiment_or_agent(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    agent_id = await register(http, fake_agent.url)
    experiment_id = await create_experiment(http)

    missing_exp = unique("no-such-exp")
    r = await http.post("/api/v1/jobs", json={"experiment_id": missing_exp, "agent_id": agent_id})
    assert r.status_code == 404
    assert missing_exp in r.json()["detail"] and "experiment" in r.json()["detail"]

    missing_agent = unique("no-such-agent")
    body = {"experiment_id": experiment_id, "agent_id": missing_agent}
    r = await http.post("/api/v1/jobs", json=body)
    assert r.status_code == 404
    assert missing_agent in r.json()["detail"] and "agent" in r.json()["detail"]

    # Nothing was created for either.
    listed = (await http.get("/api/v1/jobs", params={"experiment_id": experiment_id})).json()
    assert listed == {"jobs": {}}


async def test_invalid_bodies_and_ids_are_422_naming_the_field(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/v1/jobs", json={"agent_id": "agent-1"})
    assert r.status_code == 422
    assert ["body", "experiment_id"] in [e["loc"] for e in r.json()["detail"]]
    r = await http.post("/api/v1/jobs", json={"experiment_id": "exp-1", "agent_id": "../x"})
    assert r.status_code == 422
    assert ["body", "agent_id"] in [e["loc"] for e in r.json()["detail"]]

    spec = experiment_body()
    spec["experiment_spec"]["task"]["type"] = "not_a_task"
    r = await http.post("/api/v1/experiments/", json=spec)
    assert r.status_code == 422
    assert ["body", "experiment_spec", "task", "type"] in [e["loc"] for e in r.json()["detail"]]

    r = await http.post("/api/v1/agents/register", json={"agent_url": "ftp://somewhere"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "agent_url"]

    r = await http.get("/api/v1/jobs", params={"status": "sleeping"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "status"]

    for path in ("/api/v1/jobs/..%2F..%2Fetc", "/api/v1/experiments/.hidden", "/api/v1/jobs/a b"):
        r = await http.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    r = await http.get("/api/v1/results/" + "x" * 200)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "job_id"]


async def test_unknown_ids_are_404_naming_the_id(http: httpx.AsyncClient) -> None:
    job_id = "job_00000000"
    for path in (
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/results/{job_id}",
        "/api/v1/experiments/exp-missing-1",
        "/api/v1/agents/agent-missing-1/info",
        "/api/v1/agents/agent-missing-1/status",
    ):
        r = await http.get(path)
        assert r.status_code == 404, path
        assert path.split("/")[4] in r.json()["detail"], r.json()
    r = await http.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 404 and job_id in r.json()["detail"]
    r = await http.delete("/api/v1/experiments/exp-missing-1")
    assert r.status_code == 404 and "exp-missing-1" in r.json()["detail"]
    r = await http.post("/api/v1/agents/unregister", json={"agent_id": "agent-missing-1"})
    assert r.status_code == 404 and "agent-missing-1" in r.json()["detail"]


async def test_duplicates_are_409(http: httpx.AsyncClient, fake_agent: FakeAgent) -> None:
    # An agent registering again (a restart) is no duplicate: the same record answers.
    agent_id = await register(http, fake_agent.url)
    first = (await http.get(f"/api/v1/agents/{agent_id}/info")).json()["agent"]
    r = await http.post("/api/v1/agents/register", json={"agent_url": fake_agent.url})
    assert r.status_code == 200
    assert (r.json()["agent_id"], r.json()["registered_at"]) == (agent_id, first["registered_at"])

    body = experiment_body()
    assert (await http.post("/api/v1/experiments/", json=body)).status_code == 200
    r = await http.post("/api/v1/experiments/", json=body)
    assert r.status_code == 409
    assert body["experiment_spec"]["id"] in r.json()["detail"]


async def test_registering_an_unreachable_agent_is_503_with_the_reason(
    http: httpx.AsyncClient,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = await http.post("/api/v1/agents/register", json={"agent_url": url})
    assert r.status_code == 503
    assert url in r.json()["detail"] and "cannot reach" in r.json()["detail"]
    assert all(a["agent_url"] != url for a in (await http.get("/api/v1/agents/")).json()["agents"])


async def test_registering_something_that_is_not_an_agent_is_502(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    # A service that answers, but 404 on /api/v1/info: not a Ruckus agent.
    r = await http.post("/api/v1/agents/register", json={"agent_url": fake_agent.url + "/nope"})
    assert r.status_code == 502
    assert "404" in r.json()["detail"]


async def test_unfinished_jobs_block_deletion_and_finished_jobs_refuse_cancel(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)  # jobs run until told to finish
    agent_id = await register(http, fake_agent.url)
    experiment_id = await create_experiment(http)
    job = await create_job(http, experiment_id, agent_id)

    r = await http.delete(f"/api/v1/experiments/{experiment_id}")
    assert r.status_code == 409
    assert experiment_id in r.json()["detail"] and "cancel" in r.json()["detail"]

    r = await http.delete(f"/api/v1/jobs/{job.job_id}")
    assert r.status_code == 204 and r.content == b""
    await wait_job(http, job.job_id, JobStatusEnum.CANCELLED)

    r = await http.delete(f"/api/v1/jobs/{job.job_id}")
    assert r.status_code == 409
    assert job.job_id in r.json()["detail"] and "cancelled" in r.json()["detail"]

    r = await http.delete(f"/api/v1/experiments/{experiment_id}")
    assert r.status_code == 200 and r.json()["experiment_id"] == experiment_id
    assert (await http.get(f"/api/v1/experiments/{experiment_id}")).status_code == 404
    # The job stays as history.
    assert (await http.get(f"/api/v1/jobs/{job.job_id}")).json()["status"]["status"] == "cancelled"


async def test_results_of_an_unfinished_job_say_so(
    http: httpx.AsyncClient, fake_agent: FakeAgent
) -> None:
    await fake_agent.control(job_duration=None)
    agent_id = await register(http, fake_agent.url)
    job = await create_job(http, await create_experiment(http), agent_id)
    r = await http.get(f"/api/v1/results/{job.job_id}")
    assert r.status_code == 404
    assert job.job_id in r.json()["detail"] and "no results yet" in r.json()["detail"]
    await http.delete(f"/api/v1/jobs/{job.job_id}")
    await wait_job(http, job.job_id, JobStatusEnum.CANCELLED)


async def test_collection_paths_answer_with_and_without_the_trailing_slash(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/api/v1/agents", "/api/v1/experiments", "/api/v1/jobs", "/api/v1/results"):
        for spelling in (path, path + "/"):
            r = await http.get(spelling)
            assert r.status_code == 200, (spelling, r.status_code)
    for spelling in ("/api/v1/experiments", "/api/v1/experiments/"):
        r = await http.post(spelling, json=experiment_body())
        assert r.status_code == 200, (spelling, r.text)
