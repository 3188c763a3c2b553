"""The `ruckus` command against a real `ruckus api` process and real agents: agents that join by
themselves, tables read at 80 columns, `--json` equal to the API's answer, and errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Stack
from tests.support.processes import free_port, wait_until
from tests.support.stack import HttpService

REPO = Path(__file__).resolve().parents[2]
API_KEY = f"cli-key-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("cli")
    await process.start_and_wait()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def keyed_api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("cli-keyed", RUCKUS_API_KEY=API_KEY)
    await process.start_and_wait()
    yield process
    process.stop()


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without Ruckus settings, so only what a test gives counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_")} | extra


def ruckus(
    api: HttpService, *args: str, columns: int = 200, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"RUCKUS_SERVER_URL": api.url, "COLUMNS": str(columns), "PATH": "/usr/bin:/bin"}
    if key is not None:
        env["RUCKUS_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip


def api_get(api: HttpService, path: str, key: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(api.url + path, params=params, headers=headers, timeout=30)
    answer.raise_for_status()
    return answer.json()


class CliAgent:
    """`ruckus agent ...` as a person starts it, in a working directory of its own."""

    def __init__(self, cwd: Path, *flags: str, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"agent-{self.port}.log"
        args = [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(self.port), *flags]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=clean_env(**env)
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def agent_id(self) -> str:
        def answered() -> str:
            assert self.process.poll() is None, self.log()[-3000:]
            return str(httpx.get(self.url + "/health", timeout=2).json()["agent_id"])

        return wait_until(answered, 30, interval=0.1, ignore=(httpx.TransportError,))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[CliAgent]]:
    started: list[CliAgent] = []
    yield started
    for agent in started:
        agent.stop()


def registered(api: HttpService, agent_id: str, url: str, key: str | None = None) -> dict:
    """The API's record of the agent once it is registered at `url`."""

    def at_url() -> dict | None:
        answer = httpx.get(
            f"{api.url}/api/v1/agents/{agent_id}/info",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=5,
        )
        if answer.status_code == 404:
            return None
        agent = answer.json()["agent"]
        return agent if agent["agent_url"] == url else None

    return wait_until(at_url, 60, interval=0.1, what=f"agent {agent_id} registered at {url}")


def tiny_experiment(tmp_path: Path, experiment_id: str, **params: Any) -> Path:
    spec = {
        "id": experiment_id,
        "name": "tiny matmul from the command line",
        "model": "none",
        "task": {
            "name": "matmul",
            "type": "compute_benchmark",
            "params": {"matrix_sizes": [32], "precision_types": ["fp32"], **params},
        },
    }
    path = tmp_path / f"{experiment_id}.json"
    path.write_text(json.dumps(spec))
    return path


# Agents that join by themselves


def test_an_agent_joins_by_itself_and_moves_to_a_new_url(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    first = CliAgent(
        tmp_path, "--server", api.url, "--name", "bench-box", "--label", "gpu=none",
        "--label", "site=lab",
    )  # fmt: skip
    agents.append(first)
    agent_id = first.agent_id()

    record = registered(api, agent_id, first.url)
    assert record["agent_name"] == "bench-box"
    assert record["labels"] == {"gpu": "none", "site": "lab"}
    own_info = httpx.get(first.url + "/api/v1/info", timeout=10).json()["agent_info"]
    assert own_info["labels"] == {"gpu": "none", "site": "lab"}
    # A port other than 8081: a data dir of its own by default.
    assert (tmp_path / ".ruckus" / f"agent-{first.port}" / "agent_id").read_text().strip() == (
        agent_id
    )
    lines = [line for line in first.log().splitlines() if "registered with" in line]
    assert len(lines) == 1 and agent_id in lines[0] and first.url in lines[0], first.log()

    # Restarted elsewhere (another port, the same data dir): the record follows it.
    first.stop()
    data_dir = str(tmp_path / ".ruckus" / f"agent-{first.port}")
    moved = CliAgent(tmp_path, "--server", api.url, "--data-dir", data_dir)
    agents.append(moved)
    assert moved.agent_id() == agent_id
    again = registered(api, agent_id, moved.url)
    assert again["registered_at"] == record["registered_at"]
    listed = api_get(api, "/api/v1/agents/")["agents"]
    assert [a["agent_url"] for a in listed if a["agent_id"] == agent_id] == [moved.url]


async def test_an_agent_started_before_its_server_registers_once_the_server_answers(
    stack: Stack, agents: list[CliAgent], tmp_path: Path
) -> None:
    late = stack.api_process("late")
    agent = CliAgent(tmp_path, "--server", late.url)
    agents.append(agent)
    agent_id = agent.agent_id()
    wait_until(
        lambda: "cannot register with" in agent.log(), 30, interval=0.1, what="the retry line"
    )

    await late.start_and_wait()
    try:
        registered(late, agent_id, agent.url)
        log = agent.log()
        # One line for the reason it waits, one when it is done: not one per try.
        assert log.count("cannot register with") == 1, log
        assert log.count("registered with") == 1, log
    finally:
        late.stop()


def test_two_agents_on_one_machine_get_their_own_ids(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    one = CliAgent(tmp_path, "--server", api.url)
    two = CliAgent(tmp_path, "--server", api.url)
    agents += [one, two]
    ids = {one.agent_id(), two.agent_id()}
    assert len(ids) == 2
    for agent in (one, two):
        registered(api, agent.agent_id(), agent.url)

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
    keyed_api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    # RUCKUS_SERVER_URL and RUCKUS_API_KEY, as the client commands read them.
    agent = CliAgent(tmp_path, RUCKUS_SERVER_URL=keyed_api.url, RUCKUS_API_KEY=API_KEY)
    agents.append(agent)
    agent_id = agent.agent_id()
    registered(keyed_api, agent_id, agent.url, key=API_KEY)
    listed = ruckus(keyed_api, "agents", "list", "--json", key=API_KEY)
    assert agent_id in [a["agent_id"] for a in json.loads(listed.stdout)["agents"]]
    refused = ruckus(keyed_api, "agents", "list")
    assert refused.returncode == 1 and "HTTP 401" in refused.stdout

    # A wrong key: refused once, said once in the log, and the agent keeps serving.
    wrong = CliAgent(tmp_path, "--server", keyed_api.url, "--api-key", "not-the-key")
    agents.append(wrong)
    wait_until(lambda: "refused" in wrong.log(), 30, interval=0.1, what="the refusal in the log")
    refusal = [line for line in wrong.log().splitlines() if "refused" in line]
    assert len(refusal) == 1 and "HTTP 401" in refusal[0], wrong.log()
    assert httpx.get(wrong.url + "/health", timeout=5).status_code == 200


def test_unregister_forgets_the_agent(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    agent = CliAgent(tmp_path, "--server", api.url)
    agents.append(agent)
    agent_id = agent.agent_id()
    registered(api, agent_id, agent.url)

    done = ruckus(api, "agents", "unregister", agent_id, columns=80)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"unregistered {agent_id}" in done.stdout
    assert httpx.get(f"{api.url}/api/v1/agents/{agent_id}/info").status_code == 404
    again = ruckus(api, "agents", "unregister", agent_id)
    assert again.returncode == 1 and "HTTP 404" in again.stdout


# Jobs, results and tables


def submit_and_wait(api: HttpService, experiment_id: str, agent_id: str) -> dict[str, Any]:
    done = ruckus(api, "jobs", "submit", experiment_id, agent_id, "--watch", "--json")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_a_user_runs_a_job_from_the_command_line(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    agent = CliAgent(tmp_path, "--server", api.url)
    agents.append(agent)
    agent_id = agent.agent_id()
    registered(api, agent_id, agent.url)
    experiment_id = f"cli-run-{uuid.uuid4().hex[:8]}"
    created = ruckus(
        api, "experiments", "create", "-f", str(tiny_experiment(tmp_path, experiment_id))
    )
    assert created.returncode == 0 and experiment_id in created.stdout, created.stdout

    final = submit_and_wait(api, experiment_id, agent_id)

    # --watch --json prints one document: the job as it ended, as the API answers it.
    assert final == api_get(api, f"/api/v1/jobs/{final['job_id']}")
    assert final["status"]["status"] == "completed"
    job_id = final["job_id"]
    shown = ruckus(api, "jobs", "show", job_id, columns=80)
    fields = dict(line.split(":", 1) for line in shown.stdout.splitlines())
    assert fields["job"].strip() == job_id and fields["status"].strip() == "completed"
    assert fields["agent"].strip() == agent_id and fields["experiment"].strip() == experiment_id
    result = ruckus(api, "results", "show", job_id, columns=80)
    assert result.returncode == 0
    assert "gflops_fp32_32" in result.stdout
    duration = next(line for line in result.stdout.splitlines() if line.startswith("duration:"))
    assert duration.split(":", 1)[1].strip().endswith(" s")
    assert len(duration.split(":", 1)[1].strip().split()[0].replace(".", "")) <= 4  # 1.23 s

    # Errors: one line with the server's reason, and a non-zero exit.
    again = ruckus(api, "jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "HTTP 409" in again.stdout and "already finished" in again.stdout
    unknown = ruckus(api, "jobs", "show", "job_00000000")
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stdout


def test_results_of_a_failed_job_show_its_status_and_error_and_exit_non_zero(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    agent = CliAgent(tmp_path, "--server", api.url)
    agents.append(agent)
    agent_id = agent.agent_id()
    registered(api, agent_id, agent.url)
    # An LLM endpoint where nothing listens: the job fails on the agent with a clear error.
    experiment_id = f"cli-fails-{uuid.uuid4().hex[:8]}"
    spec = {
        "id": experiment_id,
        "name": "nothing answers",
        "model": "none",
        "task": {
            "name": "chat",
            "type": "llm_generation",
            "params": {
                "prompt_template": {"messages": [{"role": "user", "content": "hi"}]},
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "request_timeout_seconds": 5,
            },
        },
        "framework": {"name": "openai"},
    }
    path = tmp_path / "fails.json"
    path.write_text(json.dumps(spec))
    assert ruckus(api, "experiments", "create", "-f", str(path)).returncode == 0
    final = submit_and_wait(api, experiment_id, agent_id)
    assert final["status"]["status"] == "failed", final

    shown = ruckus(api, "results", "show", final["job_id"], columns=80)

    assert shown.returncode == 2, shown.stdout + shown.stderr
    fields = dict(line.split(":", 1) for line in shown.stdout.splitlines() if ":" in line[:12])
    assert fields["status"].strip() == "failed"
    assert "could not talk to the endpoint" in shown.stdout
    as_json = ruckus(api, "results", "show", final["job_id"], "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == api_get(api, f"/api/v1/results/{final['job_id']}")


def test_tables_at_80_columns_keep_every_id_whole_and_json_is_the_apis_answer(
    api: HttpService, agents: list[CliAgent], tmp_path: Path
) -> None:
    pair = [CliAgent(tmp_path, "--server", api.url, "--name", f"box-{i}") for i in range(2)]
    agents += pair
    agent_ids = [a.agent_id() for a in pair]
    for agent, agent_id in zip(pair, agent_ids, strict=True):
        registered(api, agent_id, agent.url)
    experiment_id = f"a-rather-long-experiment-name-{uuid.uuid4().hex[:8]}"
    path = tiny_experiment(tmp_path, experiment_id)
    assert ruckus(api, "experiments", "create", "-f", str(path)).returncode == 0
    jobs = [submit_and_wait(api, experiment_id, agent_id)["job_id"] for agent_id in agent_ids]

    whole = {
        ("agents", "list"): [*agent_ids, *(a.url for a in pair)],
        ("agents", "status"): agent_ids,
        ("experiments", "list"): [experiment_id],
        ("jobs", "list", "--experiment", experiment_id): [*jobs, *agent_ids, experiment_id],
        ("results", "show", "--experiment", experiment_id): [*jobs, experiment_id],
    }
    for command, ids in whole.items():
        shown = ruckus(api, *command, columns=80)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        lines = shown.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, shown.stdout
        for value in ids:
            assert any(value in line for line in lines), f"{command}: {value} cut:\n{shown.stdout}"

    # Newest first: the second job is listed before the first.
    listed = ruckus(api, "jobs", "list", "--experiment", experiment_id, columns=80).stdout
    assert listed.index(jobs[1]) < listed.index(jobs[0])
    results = ruckus(api, "results", "show", "--experiment", experiment_id, columns=80).stdout
    assert results.index(jobs[1]) < results.index(jobs[0])
    # --wide: every column, whatever the width.
    wide = ruckus(api, "jobs", "list", "--experiment", experiment_id, "--wide", columns=80)
    assert "message" in wide.stdout and "created" in wide.stdout

    # --json: exactly what the API answers.
    same = {
        ("agents", "list"): ("/api/v1/agents/", {}),
        ("experiments", "list"): ("/api/v1/experiments/", {}),
        ("experiments", "show", experiment_id): (f"/api/v1/experiments/{experiment_id}", {}),
        ("jobs", "list", "--experiment", experiment_id): (
            "/api/v1/jobs",
            {"experiment_id": experiment_id, "limit": 50, "offset": 0},
        ),
        ("jobs", "show", jobs[0]): (f"/api/v1/jobs/{jobs[0]}", {}),
        ("results", "show", jobs[0]): (f"/api/v1/results/{jobs[0]}", {}),
        ("results", "show", "--experiment", experiment_id): (
            "/api/v1/results",
            {"experiment_id": experiment_id},
        ),
    }
    for command, (path, params) in same.items():
        shown = ruckus(api, *command, "--json")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert json.loads(shown.stdout) == api_get(api, path, **params), command


def test_an_unreachable_server_is_a_clear_error() -> None:
    down = subprocess.run(
        [sys.executable, "-m", "ruckus.cli", "agents", "list", "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert down.returncode == 1
    assert "cannot reach the Ruckus server at http://127.0.0.1:9" in down.stdout


# Experiments checked at the door, as a person using the command line sees it.

CLI_RIGHT = {
    "compute_benchmark": "matrix_sizes: [64]\n    precision_types: [fp32]",
    "memory_benchmark": "test_sizes_mb: [4]\n    test_patterns: [random]",
    "gpu_benchmark": "device: cuda\n    precision_types: [fp16, bf16]",
    "llm_generation": (
        "base_url: http://127.0.0.1:11434/v1\n    prompt_template:\n      messages:\n"
        "        - {role: user, content: hi}"
    ),
}
CLI_WRONG = {
    "compute_benchmark": (
        "matrix_sizes: [64]\n    precision_types: [fp99]",
        "experiment_spec.task.params.precision_types.0: Input should be 'fp64', 'fp32', "
        "'tf32', 'fp16', 'bf16', 'int8' or 'fp8'",
    ),
    "memory_benchmark": (
        "test_size_mb: [4]",
        "experiment_spec.task.params.test_size_mb: unknown name 'test_size_mb' for task type "
        "'memory_benchmark'; did you mean 'test_sizes_mb'? valid names: iterations_per_size, "
        "min_duration_seconds, runs, test_patterns, test_sizes_mb",
    ),
    "gpu_benchmark": (
        "precision_types: fp16",
        "experiment_spec.task.params.precision_types: Input should be a valid list; "
        "precision_types is a list of precisions, e.g. [fp16, bf16]; valid: fp64, fp32, tf32, "
        "fp16, bf16, int8, fp8",
    ),
    "llm_generation": (
        "base_url: http://127.0.0.1:11434/v1",
        "experiment_spec.task.params.prompt_template: Field required",
    ),
}
CLI_FRAMEWORK = {
    "compute_benchmark": "numpy",
    "memory_benchmark": "numpy",
    "gpu_benchmark": "pytorch",
    "llm_generation": "openai",
}


def spec_file(tmp_path: Path, task_type: str, params: str, experiment_id: str) -> Path:
    path = tmp_path / f"{experiment_id}.yaml"
    path.write_text(
        f"id: {experiment_id}\nname: {task_type} from a file\nmodel: none\n"
        f"task:\n  name: t\n  type: {task_type}\n  params:\n    {params}\n"
        f"framework:\n  name: {CLI_FRAMEWORK[task_type]}\n"
    )
    return path


def one_line(text: str) -> str:
    """The output without the terminal's line wrapping."""
    return " ".join(text.split())


@pytest.mark.parametrize("task_type", list(CLI_WRONG))
def test_creating_an_experiment_from_a_file_names_the_wrong_field_and_the_valid_values(
    api: HttpService, tmp_path: Path, task_type: str
) -> None:
    params, says = CLI_WRONG[task_type]
    wrong_id = f"cli-wrong-{task_type}-{tmp_path.name}"
    wrong = ruckus(
        api, "experiments", "create", "-f", str(spec_file(tmp_path, task_type, params, wrong_id))
    )
    assert wrong.returncode == 1, wrong.stdout
    assert "HTTP 422" in wrong.stdout and says in one_line(wrong.stdout), wrong.stdout
    shown = ruckus(api, "experiments", "show", wrong_id)
    assert shown.returncode == 1 and "HTTP 404" in shown.stdout

    right_id = f"cli-right-{task_type}-{tmp_path.name}"
    path = spec_file(tmp_path, task_type, CLI_RIGHT[task_type], right_id)
    right = ruckus(api, "experiments", "create", "-f", str(path), "--json")
    assert right.returncode == 0, right.stdout + right.stderr
    assert json.loads(right.stdout)["experiment_id"] == right_id


def test_a_nan_is_refused_and_the_connection_serves_the_next_request(api: HttpService) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        refused = http.post(
            "/api/v1/jobs",
            content=b'{"experiment_id": NaN, "agent_id": "a"}',
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "experiment_id"]
        assert http.get("/api/v1/experiments/").status_code == 200
