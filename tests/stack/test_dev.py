"""`ruckus dev` as a user runs it: a real subprocess on free ports and its own data directory.

The main run sets RUCKUS_API_KEY, as the README recommends: every call, the local agent's
registration included, must carry it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
TEMPORAL = Path(sys.executable).parent / "temporal"
API_KEY = f"dev-key-{uuid.uuid4().hex}"


class DevRun:
    """One `ruckus dev` process and the ports it was given."""

    def __init__(self, data_dir: Path, *extra: str, api_key: str | None = None) -> None:
        self.ports = {name: free_port() for name in ("temporal", "ui", "api", "agent")}
        self.data_dir = data_dir
        self.log = data_dir.parent / f"dev-{len(list(data_dir.parent.glob('dev-*')))}.log"
        cmd = [
            sys.executable, "-m", "ruckus.cli", "dev",
            "--data-dir", str(data_dir),
            "--temporal-port", str(self.ports["temporal"]),
            "--ui-port", str(self.ports["ui"]),
            "--api-port", str(self.ports["api"]),
            "--agent-port", str(self.ports["agent"]),
            *extra,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_")}
        env |= {"COLUMNS": "200", "TERM": "dumb"}
        if api_key is not None:
            env["RUCKUS_API_KEY"] = api_key
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 120) -> None:
        def seen() -> bool:
            assert self.proc.poll() is None or text in self.output(), self.output()[-3000:]
            return text in self.output()

        wait_until(seen, timeout, interval=0.2, what=f"'{text}' from ruckus dev")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path / "data", api_key=API_KEY)
    yield run
    if run.proc.poll() is None:
        run.proc.kill()


def test_dev_runs_the_stack_a_demo_and_a_job_with_an_api_key_and_stops_cleanly(
    dev: DevRun, tmp_path: Path
) -> None:
    dev.wait_output("Ruckus is running")
    out = dev.output()
    assert "completed" in out, out[-3000:]
    assert f"http://127.0.0.1:{dev.ports['ui']}/namespaces/default/workflows/job_" in out
    # The demo ends with a run of its experiment on the agent, and that run's comparison.
    assert "comparison by agent" in out and "peak_gflops (GFLOP/s)" in out, out[-3000:]
    assert f"{dev.api}/api/v1/runs/run_" in out and "/report" in out
    # The web console is the API's own page, its links pointing at this dev server's web UI.
    assert f"web console {dev.api}/" in out and f"{dev.api}/#/runs/run_" in out
    page = httpx.get(dev.api + "/", timeout=10)
    assert page.status_code == 200 and "<title>Ruckus</title>" in page.text
    config = httpx.get(dev.api + "/console/config", timeout=10).json()
    assert config["temporal_ui_url"] == f"http://127.0.0.1:{dev.ports['ui']}"
    assert config["key_required"] and not config["signed_in"]

    # The key is required: without it the API refuses, with it everything works.
    assert httpx.get(dev.api + "/api/v1/agents/", timeout=10).status_code == 401
    http = httpx.Client(
        base_url=dev.api, timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    agent = http.get("/api/v1/agents/").json()["agents"][0]
    agent_id = agent["agent_id"]
    assert agent["agent_url"] == f"http://127.0.0.1:{dev.ports['agent']}"
    job = http.post(
        "/api/v1/jobs", json={"experiment_id": "demo-compute-benchmark", "agent_id": agent_id}
    ).json()
    job_id = job["job_id"]
    wait_until(
        lambda: http.get(f"/api/v1/jobs/{job_id}").json()["status"]["status"] == "completed",
        60,
        interval=0.2,
        what="the job over HTTP to complete",
    )
    assert http.get(f"/api/v1/results/{job_id}").json()["result"]["metrics"]
    # The CLI takes the key from the environment too.
    cli = subprocess.run(
        [sys.executable, "-m", "ruckus.cli", "jobs", "show", job_id, "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "RUCKUS_SERVER_URL": dev.api, "RUCKUS_API_KEY": API_KEY},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["status"]["status"] == "completed"

    # The bundled temporal CLI finds it by search attribute.
    listed = subprocess.run(
        [str(TEMPORAL), "workflow", "list", "--address", f"127.0.0.1:{dev.ports['temporal']}",
         "--query", f'RuckusAgentId="{agent_id}" AND RuckusJobStatus="completed"', "-o", "json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert job_id in {w["execution"]["workflowId"] for w in json.loads(listed.stdout)}

    children = dev.descendants()
    assert len(children) >= 4
    assert dev.interrupt() == 0
    wait_until(
        lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children),
        15,
        what="every child to exit",
    )

    # Started again on the same data: the jobs and results are still there, and the demo is
    # not run a second time.
    again = DevRun(dev.data_dir, api_key=API_KEY)
    try:
        again.wait_output("Ruckus is running")
        assert "the demo ran before" in again.output()
        assert "submitted demo job" not in again.output()
        http = httpx.Client(
            base_url=again.api, timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert http.get(f"/api/v1/jobs/{job_id}").json()["status"]["status"] == "completed"
        assert http.get(f"/api/v1/results/{job_id}").status_code == 200
        jobs = http.get("/api/v1/jobs").json()["jobs"][agent_id]
        assert len(jobs) == 4  # the demo job, the demo run's two and ours: nothing new
        assert "the demo's comparison ran before" in again.output()
        assert len(http.get("/api/v1/runs").json()["runs"]) == 1
        experiments = http.get("/api/v1/experiments/").json()["experiments"]
        assert [e["id"] for e in experiments] == ["demo-compute-benchmark"]
        # The agent kept its id and was registered again at its new port.
        agents = http.get("/api/v1/agents/").json()["agents"]
        assert [(a["agent_id"], a["agent_url"]) for a in agents] == [
            (agent_id, f"http://127.0.0.1:{again.ports['agent']}")
        ]
        assert again.interrupt() == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()


def test_a_port_in_use_is_a_one_line_error_naming_the_flag(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # Every other port free-picked: the check must be about this one, whatever else runs.
        cmd = [
            sys.executable, "-m", "ruckus.cli", "dev",
            "--data-dir", str(tmp_path / "d"),
            "--temporal-port", str(free_port()),
            "--ui-port", str(free_port()),
            "--api-port", str(port),
            "--agent-port", str(free_port()),
            "--no-demo",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1
    assert f"port {port} for the Ruckus API is already in use" in done.stdout
    assert "--api-port" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 2  # the error, then "all ... stopped"


def test_a_missing_temporal_binary_says_how_to_fix_it(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "ruckus.cli",
        "dev",
        "--data-dir",
        str(tmp_path / "d"),
        "--temporal-binary",
        str(tmp_path / "nope"),
        "--no-demo",
        "--temporal-port",
        str(free_port()),
        "--ui-port",
        str(free_port()),
        "--api-port",
        str(free_port()),
        "--agent-port",
        str(free_port()),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1
    assert "does not exist" in done.stdout and "--temporal-binary" in done.stdout


def test_a_child_that_dies_is_reported_and_the_rest_stopped(dev: DevRun) -> None:
    dev.wait_output("Ruckus is running")
    worker = next(p for p in dev.descendants() if "worker" in " ".join(p.cmdline()))
    others = [p for p in dev.descendants() if p.pid != worker.pid]
    worker.kill()
    assert dev.proc.wait(30) == 1
    out = dev.output()
    assert "the worker exited with code -9" in out
    assert "worker.log" in out
    wait_until(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in others),
        15,
        what="the other children to stop",
    )
