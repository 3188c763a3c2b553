"""Comparisons of real jobs on real agents: the API, the CLI and the report in a browser."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.comparison import Comparison
from common.models import JobInfo, JobStatusEnum
from tests.api.conftest import Stack, create_job, register, wait_job
from tests.support.browser import chromium
from tests.support.stack import FakeAgent, HttpService, free_port

REPO = Path(__file__).resolve().parents[2]
SIZES = [32, 48]


@dataclass
class Measured:
    """One experiment run twice on each of two real agents, and once on an agent that fails."""

    api: HttpService
    experiment_id: str
    agents: list[str]  # the two real agents, then the failing one
    jobs: list[JobInfo]


def real_agent(stack: Stack, name: str) -> HttpService:
    port = free_port()
    return HttpService(
        [sys.executable, "-m", "ruckus.cli", "agent", "--port", str(port)],
        port,
        stack.root / f"{name}.log",
        {"RUCKUS_AGENT_DATA_DIR": str(stack.root / name), "RUCKUS_AGENT_AGENT_NAME": name},
    )


@pytest.fixture(scope="module")
async def measured(stack: Stack) -> AsyncIterator[Measured]:
    api = stack.api_process("comparison")
    agents = [real_agent(stack, f"bench-{i}-{uuid.uuid4().hex[:6]}") for i in (1, 2)]
    failing = FakeAgent(stack.root, f"failing-{uuid.uuid4().hex[:6]}")
    for process in (api, *agents, failing):
        await process.start_and_wait()
    await failing.control(final_status="failed")
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            ids = [await register(http, a.url) for a in (*agents, failing)]
            experiment_id = f"compare-{uuid.uuid4().hex[:8]}"
            spec = {
                "id": experiment_id,
                "name": "matmul, three runs",
                "model": "none",
                "task": {
                    "name": "matmul",
                    "type": "compute_benchmark",
                    "params": {"matrix_sizes": SIZES, "precision_types": ["fp32"], "runs": 3},
                },
            }
            created = await http.post("/api/v1/experiments/", json={"experiment_spec": spec})
            assert created.status_code == 200, created.text
            jobs = [await create_job(http, experiment_id, a) for a in ids[:2] for _ in range(2)]
            jobs.append(await create_job(http, experiment_id, ids[2]))
            ended = [await wait_job(http, j.job_id, *TERMINAL, timeout=120) for j in jobs]
        yield Measured(api, experiment_id, ids, ended)
    finally:
        for process in (failing, *agents, api):
            process.stop()


TERMINAL = (JobStatusEnum.COMPLETED, JobStatusEnum.FAILED, JobStatusEnum.CANCELLED)


async def get_json(m: Measured, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=m.api.url, timeout=30) as http:
        response = await http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_statistics_equal_those_of_the_stored_results(measured: Measured) -> None:
    assert [j.status.status for j in measured.jobs] == [JobStatusEnum.COMPLETED] * 4 + [
        JobStatusEnum.FAILED
    ]
    comparison = Comparison.model_validate(
        await get_json(measured, "/api/v1/comparison", experiment_id=measured.experiment_id)
    )
    results = (await get_json(measured, "/api/v1/results", experiment_id=measured.experiment_id))[
        "results"
    ]
    assert comparison.by == "agent"
    assert [r.key for r in comparison.rows] == measured.agents
    names = [m.name for m in comparison.metrics]
    assert names == [f"gflops_fp32_{n}" for n in SIZES] + ["peak_gflops"]
    assert {(m.unit, m.higher_is_better) for m in comparison.metrics} == {("GFLOP/s", True)}

    means = {}
    for row in comparison.rows[:2]:
        of_agent = {j.job_id for j in measured.jobs if j.agent_id == row.key}
        stored = [r for r in results if r["job_id"] in of_agent]
        assert sorted(row.job_ids) == sorted(r["job_id"] for r in stored) and len(stored) == 2
        for name in names:
            # Runs 2 and 3 of each job are measured; run 1 is the cold start.
            values = [v for r in stored for v in r["metrics"]["repeats"]["raw"][name][1:]]
            cell = row.cells[name]
            assert cell is not None
            assert cell.n == 4
            assert cell.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert (cell.min, cell.max) == (min(values), max(values))
            assert cell.stddev == pytest.approx(statistics.stdev(values), rel=1e-12)
            means.setdefault(name, []).append(cell.mean)
        assert row.failed == [] and row.pending == []
        assert row.label.startswith("bench-")
        assert row.hardware.cores_logical == os.cpu_count() and row.hardware.cpu_model
    for row in comparison.rows[:2]:
        for name in names:
            cell = row.cells[name]
            assert cell is not None
            assert cell.ratio_to_best == pytest.approx(cell.mean / max(means[name]))
    assert any(r.cells[names[0]].ratio_to_best == 1.0 for r in comparison.rows[:2])  # type: ignore[union-attr]


async def test_the_failing_agent_shows_its_failure_not_zeros(measured: Measured) -> None:
    comparison = await get_json(
        measured, "/api/v1/comparison", experiment_id=measured.experiment_id
    )
    failing = comparison["rows"][2]
    failed_job = measured.jobs[-1]
    assert failing["key"] == measured.agents[2]
    assert failing["failed"] == [
        {"job_id": failed_job.job_id, "status": "failed", "error": failed_job.status.message}
    ]
    assert set(failing["cells"].values()) == {None}


async def test_job_ids_compare_the_same_jobs(measured: Measured) -> None:
    by_experiment = await get_json(
        measured, "/api/v1/comparison", experiment_id=measured.experiment_id
    )
    job_ids = ",".join(j.job_id for j in measured.jobs)
    assert await get_json(measured, "/api/v1/comparison", job_ids=job_ids) == by_experiment
    two = await get_json(
        measured,
        "/api/v1/comparison",
        job_ids=f"{measured.jobs[0].job_id},{measured.jobs[2].job_id}",
    )
    assert [(r["key"], r["job_ids"]) for r in two["rows"]] == [
        (measured.agents[0], [measured.jobs[0].job_id]),
        (measured.agents[1], [measured.jobs[2].job_id]),
    ]
    assert all(c["n"] == 2 for r in two["rows"] for c in r["cells"].values())


async def test_bad_queries(measured: Measured) -> None:
    assert await get_json(measured, "/api/v1/comparison") == {
        "by": "agent",
        "metrics": [],
        "rows": [],
    }
    async with httpx.AsyncClient(base_url=measured.api.url, timeout=30) as http:
        for params, status, words in [
            ({"job_ids": measured.jobs[0].job_id, "experiment_id": "x"}, 404, "experiment x"),
            ({"job_ids": " , "}, 422, "job_ids"),
            ({"job_ids": "../etc"}, 422, "job_ids"),
            ({"job_ids": "a" * 129}, 422, "job_ids"),
            ({"job_ids": f"{measured.jobs[0].job_id},job_99999999"}, 404, "job_99999999"),
            ({"experiment_id": "no-such-experiment"}, 404, "no-such-experiment"),
        ]:
            response = await http.get("/api/v1/comparison", params=params)
            assert response.status_code == status, (params, response.text)
            assert words in json.dumps(response.json()["detail"]), response.text


def ruckus(m: Measured, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruckus.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"RUCKUS_SERVER_URL": m.api.url, "COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )


async def test_the_cli_compares_and_writes_csv(measured: Measured, tmp_path: Path) -> None:
    api = await get_json(measured, "/api/v1/comparison", experiment_id=measured.experiment_id)
    as_json = ruckus(measured, "compare", "--experiment", measured.experiment_id, "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert json.loads(as_json.stdout) == api

    table = ruckus(measured, "compare", "--experiment", measured.experiment_id)
    assert table.returncode == 0, table.stderr
    for text in (*measured.agents, measured.jobs[-1].job_id, "peak_gflops (GFLOP/s)"):
        assert text in table.stdout, (text, table.stdout)  # ids whole, never cut

    out = tmp_path / "cmp.csv"
    written = ruckus(measured, "report", "--experiment", measured.experiment_id, "-o", str(out))
    assert written.returncode == 0, written.stdout + written.stderr
    lines = list(csv.DictReader(io.StringIO(out.read_text())))
    cells = {(r["key"], r["metric"]): r for r in lines}
    for row in api["rows"][:2]:
        for name, cell in row["cells"].items():
            assert float(cells[(row["key"], name)]["mean"]) == cell["mean"]
            assert int(cells[(row["key"], name)]["n"]) == cell["n"]
    (failing,) = [r for r in lines if r["key"] == measured.agents[2]]
    assert failing["metric"] == "" and measured.jobs[-1].job_id in failing["failed"]

    wrong = ruckus(measured, "report", "--experiment", measured.experiment_id, "-o", "x.pdf")
    assert wrong.returncode != 0 and ".html or .csv" in wrong.stdout + wrong.stderr
    neither = ruckus(measured, "compare")
    assert neither.returncode != 0


async def test_the_html_report_in_a_real_browser(measured: Measured, tmp_path: Path) -> None:
    api = await get_json(measured, "/api/v1/comparison", experiment_id=measured.experiment_id)
    page_file = tmp_path / "report.html"
    written = ruckus(
        measured, "report", "--experiment", measured.experiment_id, "-o", str(page_file)
    )
    assert written.returncode == 0, written.stdout + written.stderr
    await check_report_page(f"file://{page_file}", api, tmp_path / "report.png")


async def check_report_page(url: str, api: dict[str, Any], screenshot: Path) -> None:
    """No console error, one rendered chart per metric, the table's numbers the API's."""
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        await page.goto(url)
        charts = page.locator(".chart")
        await page.wait_for_function(
            "n => document.querySelectorAll('.chart .main-svg').length >= n",
            arg=len(api["metrics"]),
        )
        await page.screenshot(path=str(screenshot), full_page=True)
        assert errors == []
        # Nothing fetched but the page itself: the chart library is inlined.
        assert [r for r in requests if r != url and not r.startswith("data:")] == []
        assert await charts.count() == len(api["metrics"])
        metrics = [
            await charts.nth(i).get_attribute("data-metric") for i in range(await charts.count())
        ]
        assert metrics == [m["name"] for m in api["metrics"]]
        for i in range(len(api["metrics"])):
            bars = charts.nth(i).locator(".point")  # one bar per measured row
            measured_rows = [r for r in api["rows"] if r["cells"][api["metrics"][i]["name"]]]
            assert await bars.count() == len(measured_rows)
        for row in api["rows"]:
            line = page.locator(f"tr[data-row='{row['key']}']")
            for name, cell in row["cells"].items():
                td = line.locator(f"td[data-metric='{name}']")
                if cell is None:
                    assert (await td.inner_text()).strip() == "-"
                    continue
                shown = float(await td.locator(".mean").inner_text())
                assert math.isclose(shown, cell["mean"], rel_tol=5e-4), (name, shown, cell)
                assert int(await td.locator(".n").inner_text()) == cell["n"]
                ratio = float(await td.locator(".ratio").inner_text())
                assert math.isclose(ratio, cell["ratio_to_best"], rel_tol=5e-4)
        for row in api["rows"]:
            for failure in row["failed"]:
                assert failure["job_id"] in await page.locator(".failed").inner_text()
