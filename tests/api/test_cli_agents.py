"""`ruckus agent` joining a server by itself, and `ruckus agents unregister`, against a real
`ruckus api` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.cli_support import (
    CLI_API_KEY,
    CliAgent,
    api_get,
    clean_env,
    joined_agent,
    registered,
    ruckus,
)
from tests.api.conftest import Stack
from tests.support.processes import free_port, wait_until
from tests.support.stack import HttpService

# Agents that join by themselves


def test_an_agent_joins_by_itself_and_moves_to_a_new_url(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    first = CliAgent(
        tmp_path, "--server", cli_api.url, "--name", "bench-box", "--label", "gpu=none",
        "--label", "site=lab",
    )  # fmt: skip
    cli_agents.append(first)
    agent_id = first.agent_id()

    record = registered(cli_api, agent_id, first.url)
    assert record["agent_name"] == "bench-box"
    assert record["labels"] == {"gpu": "none", "site": "lab"}
    own_info = httpx.get(first.url + "/api/v1/info", timeout=10).json()["agent_info"]
    assert own_info["labels"] == {"gpu": "none", "site": "lab"}
    # A port other than 8081: a data dir of its own by default.
    assert (tmp_path / ".ruckus" / f"agent-{first.port}" / "agent_id").read_text().strip() == (
        agent_id
    )
    log = first.log_once_it_says("registered with")
    lines = [line for line in log.splitlines() if "registered with" in line]
    assert len(lines) == 1 and agent_id in lines[0] and first.url in lines[0], first.log()

    # Restarted elsewhere (another port, the same data dir): the record follows it.
    first.stop()
    data_dir = str(tmp_path / ".ruckus" / f"agent-{first.port}")
    moved = CliAgent(tmp_path, "--server", cli_api.url, "--data-dir", data_dir)
    cli_agents.append(moved)
    assert moved.agent_id() == agent_id
    again = registered(cli_api, agent_id, moved.url)
    assert again["registered_at"] == record["registered_at"]
    listed = api_get(cli_api, "/api/v1/agents/")["agents"]
    assert [a["agent_url"] for a in listed if a["agent_id"] == agent_id] == [moved.url]


async def test_an_agent_started_before_its_server_registers_once_the_server_answers(
    stack: Stack, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    late = stack.api_process("late")
    agent = CliAgent(tmp_path, "--server", late.url)
    cli_agents.append(agent)
    agent_id = agent.agent_id()
    wait_until(
        lambda: "cannot register with" in agent.log(), 30, interval=0.1, what="the retry line"
    )

    await late.start_and_wait()
    try:
        registered(late, agent_id, agent.url)
        log = agent.log_once_it_says("registered with")
        # One line for the reason it waits, one when it is done: not one per try.
        assert log.count("cannot register with") == 1, log
        assert log.count("registered with") == 1, log
    finally:
        late.stop()


def test_two_agents_on_one_machine_get_their_own_ids(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    one = CliAgent(tmp_path, "--server", cli_api.url)
    two = CliAgent(tmp_path, "--server", cli_api.url)
    cli_agents += [one, two]
    ids = {one.agent_id(), two.agent_id()}
    assert len(ids) == 2
    for agent in (one, two):
        registered(cli_api, agent.agent_id(), agent.url)

    # The same data dir twice: the second says so in one line and names the flag.
    same = subprocess.run(
        [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(free_port()),
         "--data-dir", str(tmp_path / ".ruckus" / f"agent-{one.port}")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env(),
    )  # fmt: skip
    assert same.returncode == 1
    error = same.stderr.strip()
    assert len(error.splitlines()) == 1 and "in use" in error and "--data-dir" in error, error


def test_the_server_url_and_key_come_from_the_environment_too(
    keyed_cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    # RUCKUS_SERVER_URL and RUCKUS_API_KEY, as the client commands read them.
    agent = CliAgent(tmp_path, RUCKUS_SERVER_URL=keyed_cli_api.url, RUCKUS_API_KEY=CLI_API_KEY)
    cli_agents.append(agent)
    agent_id = agent.agent_id()
    registered(keyed_cli_api, agent_id, agent.url, key=CLI_API_KEY)
    listed = ruckus(keyed_cli_api, "agents", "list", "--json", key=CLI_API_KEY)
    assert agent_id in [a["agent_id"] for a in json.loads(listed.stdout)["agents"]]
    refused = ruckus(keyed_cli_api, "agents", "list")
    assert refused.returncode == 1 and "HTTP 401" in refused.stdout

    # A wrong key: refused once, said once in the log, and the agent keeps serving.
    wrong = CliAgent(tmp_path, "--server", keyed_cli_api.url, "--api-key", "not-the-key")
    cli_agents.append(wrong)
    wait_until(lambda: "refused" in wrong.log(), 30, interval=0.1, what="the refusal in the log")
    refusal = [line for line in wrong.log().splitlines() if "refused" in line]
    assert len(refusal) == 1 and "HTTP 401" in refusal[0], wrong.log()
    assert httpx.get(wrong.url + "/health", timeout=5).status_code == 200


def test_unregister_forgets_the_agent(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    agent_id = joined_agent(cli_api, cli_agents, tmp_path)

    done = ruckus(cli_api, "agents", "unregister", agent_id, columns=80)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"unregistered {agent_id}" in done.stdout
    assert httpx.get(f"{cli_api.url}/api/v1/agents/{agent_id}/info").status_code == 404
    again = ruckus(cli_api, "agents", "unregister", agent_id)
    assert again.returncode == 1 and "HTTP 404" in again.stdout


# Jobs, results and tables
