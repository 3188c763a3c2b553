"""Jobs placed by capability, labels and load on real agents; refusals name each reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.models import JobStatusEnum
from tests.api.conftest import register, unique, wait_job
from tests.support.processes import AgentProcess

S = JobStatusEnum


# The agents of one test carry its own label: others registered by other tests stay out.
SUITE = unique("suite")


@pytest.fixture
def real_agents(tmp_path: Path) -> Iterator[dict[str, AgentProcess]]:
    """Three real agents: two of team x, one of team y."""
    labels = {
        name: {"suite": SUITE, "team": team} for name, team in (("a", "x"), ("b", "y"), ("c", "x"))
    }
    agents = {
        name: AgentProcess(
            tmp_path / name,
            settings={"agent_id": f"{name}-{unique('agent')}", "labels": json.dumps(lab)},
            log_path=tmp_path / f"{name}.log",
        )
        for name, lab in labels.items()
    }
    for agent in agents.values():
        agent.start()
    yield agents
    for agent in agents.values():
        agent.stop()


async def experiment(http: httpx.AsyncClient, task_type: str, params: dict[str, object]) -> str:
    framework = "pytorch" if task_type == "gpu_benchmark" else "numpy"
    body = {
        "experiment_spec": {
            "id": unique("exp"),
            "name": f"{task_type} placement",
            "model": "none",
            "task": {"name": task_type, "type": task_type, "params": params},
            "framework": {"name": framework},
        }
    }
    answer = await http.post("/api/v1/experiments/", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["experiment_id"])


async def test_a_job_without_an_agent_goes_to_a_fitting_idle_one(
    http: httpx.AsyncClient, real_agents: dict[str, AgentProcess]
) -> None:
    ids = {name: await register(http, agent.url) for name, agent in real_agents.items()}
    long = await experiment(
        http, "compute_benchmark", {"matrix_sizes": [256], "min_duration_seconds": 60}
    )
    quick = await experiment(http, "compute_benchmark", {"matrix_sizes": [32]})
    busy = await http.post("/api/v1/jobs", json={"experiment_id": long, "agent_id": ids["a"]})
    await wait_job(http, busy.json()["job_id"], S.RUNNING)

    team_x = {"experiment_id": quick, "selector": {"labels": {"suite": SUITE, "team": "x"}}}
    placed = await http.post("/api/v1/jobs", json=team_x)
    assert placed.status_code == 201, placed.text
    answer = placed.json()
    assert answer["agent_id"] == ids["c"]  # team x, and idle where a is busy
    assert answer["placement"]["agent_id"] == ids["c"]
    assert "fewest running and queued jobs (0)" in answer["placement"]["reason"]
    await wait_job(http, answer["job_id"], S.COMPLETED)

    # An unavailable agent is never chosen, however idle: c stops, a (busy) is the one left.
    real_agents["c"].stop()
    again = await http.post("/api/v1/jobs", json=team_x)
    assert again.status_code == 201, again.text
    assert again.json()["agent_id"] == ids["a"]
    await http.delete(f"/api/v1/jobs/{busy.json()['job_id']}")
    await wait_job(http, again.json()["job_id"], S.COMPLETED, timeout=60)

    # A selector nothing matches: 422 with each agent's reason, and no job.
    nobody = {"experiment_id": quick, "selector": {"labels": {"suite": SUITE, "team": "z"}}}
    refused = await http.post("/api/v1/jobs", json=nobody)
    assert refused.status_code == 422
    # One entry per agent, each with its reason.
    reasons = {e["input"]: e["msg"] for e in refused.json()["detail"]}
    assert all(e["loc"] == ["body", "selector"] for e in refused.json()["detail"])
    for name in ("a", "b"):
        assert reasons[ids[name]].startswith(f"agent {ids[name]} does not have the labels team=z")
    assert reasons[ids["c"]] == f"agent {ids['c']} is unavailable (it does not answer)"


async def test_a_gpu_experiment_is_refused_where_no_agent_has_a_gpu(
    http: httpx.AsyncClient, real_agents: dict[str, AgentProcess]
) -> None:
    ids = [await register(http, agent.url) for agent in real_agents.values()]
    gpu = await experiment(http, "gpu_benchmark", {"matrix_sizes": [1024]})
    before = (await http.get("/api/v1/jobs", params={"experiment_id": gpu})).json()["jobs"]

    ours = {"labels": {"suite": SUITE}}
    anywhere = await http.post("/api/v1/jobs", json={"experiment_id": gpu, "selector": ours})
    assert anywhere.status_code == 422
    reasons = {e["input"]: e["msg"] for e in anywhere.json()["detail"]}
    for agent_id in ids:
        assert reasons[agent_id] == f"agent {agent_id} has no GPU; gpu_benchmark needs one"

    named = await http.post("/api/v1/jobs", json={"experiment_id": gpu, "agent_id": ids[0]})
    assert named.status_code == 422
    (error,) = named.json()["detail"]
    assert error["loc"] == ["body", "agent_id"]
    assert error["msg"] == f"agent {ids[0]} has no GPU; gpu_benchmark needs one"
    after = (await http.get("/api/v1/jobs", params={"experiment_id": gpu})).json()["jobs"]
    assert before == after == {}
