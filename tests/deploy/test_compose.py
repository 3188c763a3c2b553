"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine runs here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic_settings import BaseSettings

from common.settings import AgentSettings, JobManagerSettings, ServerSettings, StorageSettings
from ruckus.cli import app

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
