"""The `ruckus` client commands against a real `ruckus api` process: tables, --json and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Stack
from tests.support.stack import FakeAgent, HttpService

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[HttpService]:
    process = stack.api_process("cli")
    await process.start_and_wait()
    yield process
    process.stop()


def ruckus(api: HttpService, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"RUCKUS_SERVER_URL": api.url, "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


async def test_a_user_runs_a_job_from_the_command_line(
    api: HttpService, fake_agent: FakeAgent
) -> None:
    registered = ruckus(api, "agents", "register", fake_agent.url, "--json")
    assert registered.returncode == 0, registered.stdout + registered.stderr
    agent_id = json.loads(registered.stdout)["agent_id"]
    assert agent_id in ruckus(api, "agents", "list").stdout  # a table for people

    spec = REPO / "examples" / "memory_benchmark.yaml"
    created = ruckus(api, "experiments", "create", "-f", str(spec), "--json")
    if created.returncode != 0:  # an earlier run of this module created it
        assert "already exists" in created.stdout, created.stdout
    assert "memory-bandwidth" in ruckus(api, "experiments", "list").stdout

    submitted = ruckus(api, "jobs", "submit", "memory-bandwidth", agent_id, "--watch", "--json")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    final = json.loads(submitted.stdout[submitted.stdout.rindex('{\n  "job_id"') :])
    job_id = final["job_id"]
    assert final["status"]["status"] == "completed"

    listed = json.loads(ruckus(api, "jobs", "list", "--agent", agent_id, "--json").stdout)
    assert [j["job_id"] for j in listed[agent_id]] == [job_id]
    shown = ruckus(api, "jobs", "show", job_id)
    assert job_id in shown.stdout and "completed" in shown.stdout
    result = json.loads(ruckus(api, "results", "show", job_id, "--json").stdout)
    assert result["job_id"] == job_id and result["metrics"]

    # Errors: one line with the server's reason, and a non-zero exit.
    again = ruckus(api, "jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "HTTP 409" in again.stdout and "already finished" in again.stdout
    unknown = ruckus(api, "jobs", "show", "job_00000000")
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stdout


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
