"""The `ruckus` command against a real `ruckus api` process and real agents: jobs and results,
tables read at 80 columns, `--json` equal to the API's answer, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.cli_support import (
    REPO,
    CliAgent,
    api_get,
    joined_agent,
    registered,
    ruckus,
    tiny_experiment,
)
from tests.support.processes import free_port
from tests.support.stack import HttpService


def submit_and_wait(cli_api: HttpService, experiment_id: str, agent_id: str) -> dict[str, Any]:
    done = ruckus(cli_api, "jobs", "submit", experiment_id, agent_id, "--watch", "--json")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_a_user_runs_a_job_from_the_command_line(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    agent_id = joined_agent(cli_api, cli_agents, tmp_path)
    experiment_id = f"cli-run-{uuid.uuid4().hex[:8]}"
    created = ruckus(
        cli_api, "experiments", "create", "-f", str(tiny_experiment(tmp_path, experiment_id))
    )
    assert created.returncode == 0 and experiment_id in created.stdout, created.stdout

    final = submit_and_wait(cli_api, experiment_id, agent_id)

    # --watch --json prints one document: the job as it ended, as the API answers it.
    assert final == api_get(cli_api, f"/api/v1/jobs/{final['job_id']}")
    assert final["status"]["status"] == "completed"
    job_id = final["job_id"]
    shown = ruckus(cli_api, "jobs", "show", job_id, columns=80)
    fields = dict(line.split(":", 1) for line in shown.stdout.splitlines())
    assert fields["job"].strip() == job_id and fields["status"].strip() == "completed"
    assert fields["agent"].strip() == agent_id and fields["experiment"].strip() == experiment_id
    result = ruckus(cli_api, "results", "show", job_id, columns=80)
    assert result.returncode == 0
    assert "gflops_fp32_32" in result.stdout
    duration = next(line for line in result.stdout.splitlines() if line.startswith("duration:"))
    assert duration.split(":", 1)[1].strip().endswith(" s")
    assert len(duration.split(":", 1)[1].strip().split()[0].replace(".", "")) <= 4  # 1.23 s

    # Errors: one line with the server's reason, and a non-zero exit.
    again = ruckus(cli_api, "jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "HTTP 409" in again.stdout and "already finished" in again.stdout
    unknown = ruckus(cli_api, "jobs", "show", "job_00000000")
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stdout


def test_results_of_a_failed_job_show_its_status_and_error_and_exit_non_zero(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    agent_id = joined_agent(cli_api, cli_agents, tmp_path)
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
    assert ruckus(cli_api, "experiments", "create", "-f", str(path)).returncode == 0
    final = submit_and_wait(cli_api, experiment_id, agent_id)
    assert final["status"]["status"] == "failed", final

    shown = ruckus(cli_api, "results", "show", final["job_id"], columns=80)

    assert shown.returncode == 2, shown.stdout + shown.stderr
    fields = dict(line.split(":", 1) for line in shown.stdout.splitlines() if ":" in line[:12])
    assert fields["status"].strip() == "failed"
    assert "could not talk to the endpoint" in shown.stdout
    as_json = ruckus(cli_api, "results", "show", final["job_id"], "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == api_get(cli_api, f"/api/v1/results/{final['job_id']}")


def test_tables_at_80_columns_keep_every_id_whole_and_json_is_the_apis_answer(
    cli_api: HttpService, cli_agents: list[CliAgent], tmp_path: Path
) -> None:
    pair = [CliAgent(tmp_path, "--server", cli_api.url, "--name", f"box-{i}") for i in range(2)]
    cli_agents += pair
    agent_ids = [a.agent_id() for a in pair]
    for agent, agent_id in zip(pair, agent_ids, strict=True):
        registered(cli_api, agent_id, agent.url)
    experiment_id = f"a-rather-long-experiment-name-{uuid.uuid4().hex[:8]}"
    path = tiny_experiment(tmp_path, experiment_id)
    assert ruckus(cli_api, "experiments", "create", "-f", str(path)).returncode == 0
    jobs = [submit_and_wait(cli_api, experiment_id, agent_id)["job_id"] for agent_id in agent_ids]

    whole = {
        ("agents", "list"): [*agent_ids, *(a.url for a in pair)],
        ("agents", "status"): agent_ids,
        ("experiments", "list"): [experiment_id],
        ("jobs", "list", "--experiment", experiment_id): [*jobs, *agent_ids, experiment_id],
        ("results", "show", "--experiment", experiment_id): [*jobs, experiment_id],
    }
    # A run over both agents, started and watched to its comparison at 80 columns.
    pair_args = [arg for agent_id in agent_ids for arg in ("--agent", agent_id)]
    start = ("runs", "start", experiment_id, *pair_args, "--watch")
    watched = ruckus(cli_api, *start, columns=80)
    (run,) = api_get(cli_api, "/api/v1/runs", experiment_id=experiment_id)["runs"]
    assert run["status"] == "completed", watched.stdout + watched.stderr
    run_jobs = [job["job_id"] for job in run["jobs"]]
    metrics = ["peak_gflops (GFLOP/s)", "gflops_fp32_32 (GFLOP/s)"]
    whole |= {
        ("runs", "list"): [run["run_id"], experiment_id],
        ("runs", "show", run["run_id"]): [run["run_id"], *run_jobs, *agent_ids],
        ("compare", run["run_id"]): [*metrics, *agent_ids],
    }
    assert_whole(start, watched, [*metrics, *agent_ids])
    for command, ids in whole.items():
        assert_whole(command, ruckus(cli_api, *command, columns=80), ids)

    # Newest first: the second job is listed before the first.
    listed = ruckus(cli_api, "jobs", "list", "--experiment", experiment_id, columns=80).stdout
    assert listed.index(jobs[1]) < listed.index(jobs[0])
    results = ruckus(cli_api, "results", "show", "--experiment", experiment_id, columns=80).stdout
    assert results.index(jobs[1]) < results.index(jobs[0])
    # --wide: every column, whatever the width.
    wide = ruckus(cli_api, "jobs", "list", "--experiment", experiment_id, "--wide", columns=80)
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
        shown = ruckus(cli_api, *command, "--json")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert json.loads(shown.stdout) == api_get(cli_api, path, **params), command


def assert_whole(
    command: tuple[str, ...], shown: subprocess.CompletedProcess[str], ids: list[str]
) -> None:
    """The command succeeded within 80 columns, and printed each of `ids` on one line."""
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, shown.stdout
    for value in ids:
        assert any(value in line for line in lines), f"{command}: {value} cut:\n{shown.stdout}"


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
    cli_api: HttpService, tmp_path: Path, task_type: str
) -> None:
    params, says = CLI_WRONG[task_type]
    wrong_id = f"cli-wrong-{task_type}-{tmp_path.name}"
    wrong = ruckus(
        cli_api,
        "experiments",
        "create",
        "-f",
        str(spec_file(tmp_path, task_type, params, wrong_id)),
    )
    assert wrong.returncode == 1, wrong.stdout
    assert "HTTP 422" in wrong.stdout and says in one_line(wrong.stdout), wrong.stdout
    shown = ruckus(cli_api, "experiments", "show", wrong_id)
    assert shown.returncode == 1 and "HTTP 404" in shown.stdout

    right_id = f"cli-right-{task_type}-{tmp_path.name}"
    path = spec_file(tmp_path, task_type, CLI_RIGHT[task_type], right_id)
    right = ruckus(cli_api, "experiments", "create", "-f", str(path), "--json")
    assert right.returncode == 0, right.stdout + right.stderr
    assert json.loads(right.stdout)["experiment_id"] == right_id


def test_a_nan_is_refused_and_the_connection_serves_the_next_request(cli_api: HttpService) -> None:
    with httpx.Client(base_url=cli_api.url, timeout=30) as http:
        refused = http.post(
            "/api/v1/jobs",
            content=b'{"experiment_id": NaN, "agent_id": "a"}',
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "experiment_id"]
        assert http.get("/api/v1/experiments/").status_code == 200
