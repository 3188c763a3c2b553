"""The console in chromium: an experiment from YAML to a run's comparison, a job cancelled
from its page, YAML errors at their field, the key prompt; no console error anywhere."""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import BrowserContext, expect

from tests.api.conftest import Stack
from tests.console.conftest import TEMPORAL_UI, Console, Watched, watched_page
from tests.support.stack import FakeAgent

RUN_TIMEOUT_MS = 150_000


def experiment_yaml(experiment_id: str) -> str:
    return f"""\
id: {experiment_id}
name: matmul in the console
model: none
task:
  name: matmul
  type: compute_benchmark
  params:
    matrix_sizes: [32, 48]
    precision_types: [fp32]
    runs: 3
"""


def local_text(iso: str) -> str:
    """`toLocaleString()` of en-US in Tokyo, as the page should show the time."""
    t = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Tokyo"))
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year}, {hour}:{t.minute:02}:{t.second:02} {t:%p}"


async def test_from_yaml_to_a_run_over_two_agents_and_its_comparison(
    console: Console, page: Watched
) -> None:
    p = page.page
    experiment_id = f"console-{uuid.uuid4().hex[:8]}"
    await p.goto(console.url + "#/experiments/new")
    await p.get_by_label("Experiment (YAML or JSON)").fill(experiment_yaml(experiment_id))
    await p.get_by_role("button", name="Create").click()
    await expect(p.locator("h1")).to_have_text(f"Experiment {experiment_id}")
    stored = await console.get(f"/api/v1/experiments/{experiment_id}")
    assert stored["experiment"]["task"]["params"]["matrix_sizes"] == [32, 48]

    for agent_id in console.real_agents:
        await p.locator(f"input[name=run-agent][value='{agent_id}']").check()
    await p.get_by_role("button", name="Start run").click()
    await expect(p.locator("h1")).to_have_text(re.compile(r"^Run run_[0-9a-f]{12}$"))
    run_id = (await p.locator("h1 .id").inner_text()).strip()

    # Live: each agent's row while it runs, then the run's end.
    progress = p.locator("#run-progress tbody tr")
    await expect(progress).to_have_count(2)
    for agent_id in console.real_agents:
        await expect(p.locator(f"#run-progress tr[data-agent='{agent_id}']")).to_be_visible()
    await expect(p.locator("#run-status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
    link = p.locator(".workflow-link")
    assert (
        await link.get_attribute("href") == f"{TEMPORAL_UI}/namespaces/default/workflows/{run_id}"
    )

    api = await console.get(f"/api/v1/runs/{run_id}/comparison")
    assert [r["key"] for r in api["rows"]] == console.real_agents
    metrics = [m["name"] for m in api["metrics"]]
    assert metrics == ["gflops_fp32_32", "gflops_fp32_48", "peak_gflops"]
    charts = p.locator("#charts .chart")
    await expect(charts).to_have_count(len(metrics))
    await p.wait_for_function(
        "n => document.querySelectorAll('#charts .chart .main-svg').length >= n",
        arg=len(metrics),
    )
    for i, name in enumerate(metrics):
        chart = charts.nth(i)
        assert await chart.get_attribute("data-metric") == name
        await expect(chart.locator(".point")).to_have_count(2)  # agents side by side
        await expect(chart.locator(".errorbar")).to_have_count(2)  # their spread
    for row in api["rows"]:
        line = p.locator(f"#comparison-table tr[data-row='{row['key']}']")
        for name, cell in row["cells"].items():
            td = line.locator(f"td[data-metric='{name}']")
            shown = float(await td.locator(".mean").inner_text())
            assert math.isclose(shown, cell["mean"], rel_tol=5e-4), (name, shown, cell)
            assert int(await td.locator(".n").inner_text()) == cell["n"] == 2
            assert math.isclose(
                float(await td.locator(".stddev").inner_text()), cell["stddev"], rel_tol=5e-4
            )
    async with p.expect_download() as download_info:
        await p.get_by_role("link", name="Download report (HTML)").click()
    download = await download_info.value
    assert download.suggested_filename == f"{run_id}.html"
    async with httpx.AsyncClient(base_url=console.api.url, timeout=30) as http:
        table = await http.get(f"/api/v1/runs/{run_id}/report", params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    lines = {(r["key"], r["metric"]): r for r in csv.DictReader(io.StringIO(table.text))}
    for row in api["rows"]:
        for name, cell in row["cells"].items():
            assert float(lines[(row["key"], name)]["mean"]) == cell["mean"]

    # Every page, the job of the run among them, without a console error.
    job_id = api["rows"][0]["job_ids"][0]
    job = await console.get(f"/api/v1/jobs/{job_id}")
    await p.goto(console.url + f"#/jobs/{job_id}")
    await expect(p.locator("#job-status .badge")).to_have_text("completed")
    await expect(p.locator("#metrics tr[data-metric='peak_gflops']")).to_be_visible()
    await expect(p.locator("#repeats tbody tr")).to_have_count(3)
    queued = p.locator("#timeline li[data-step='queued'] time")
    await expect(queued).to_have_text(local_text(job["created_time"]))
    await expect(p.locator("#timeline li[data-step='end']")).to_contain_text("completed")
    steps = {
        s["status"]: s["at"] for s in (await console.get(f"/api/v1/jobs/{job_id}/steps"))["steps"]
    }
    assert {"queued", "assigned", "completed"} <= set(steps)
    assert set(steps) <= {"queued", "assigned", "running", "completed"}
    # A job may end before any poll finds it running: its results then say when it started.
    result = (await console.get(f"/api/v1/results/{job_id}"))["result"]
    started = steps.get("running", result["started_at"])
    for step, at in (("assigned", steps["assigned"]), ("running", started)):
        shown = p.locator(f"#timeline li[data-step='{step}'] time")
        await expect(shown).to_have_text(local_text(at))
    await expect(p.locator("#cancel-job")).to_be_disabled()
    for hash_, heading in [
        ("#/agents", "Agents"),
        ("#/experiments", "Experiments"),
        (f"#/jobs?experiment={experiment_id}", "Jobs"),
        ("#/runs", "Runs"),
    ]:
        await p.goto(console.url + hash_)
        await expect(p.locator("h1")).to_have_text(heading)
    await expect(p.locator(f"#runs-table tr[data-run='{run_id}'] .badge")).to_have_text("completed")
    await p.goto(console.url + f"#/jobs?experiment={experiment_id}")
    await expect(p.locator("#jobs-table tbody tr")).to_have_count(2)
    await p.goto(console.url + "#/agents")
    for agent_id in console.real_agents:
        card = p.locator(f"article[data-agent='{agent_id}']")
        await expect(card.locator(".badge").first).to_have_text("idle")
        await expect(card.locator(".cpu")).not_to_have_text("CPU unknown")
    assert page.errors == []


async def slow_experiment(console: Console) -> str:
    """An experiment whose jobs on the fake agent run until they are cancelled."""
    experiment_id = f"slow-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=console.api.url, timeout=30) as http:
        body = {"experiment_spec": {"id": experiment_id, "name": "slow", "model": "none",
                "task": {"name": "m", "type": "compute_benchmark"}}}  # fmt: skip
        assert (await http.post("/api/v1/experiments/", json=body)).status_code == 200
    return experiment_id


async def test_a_job_followed_live_and_cancelled_from_its_page(
    console: Console, page: Watched
) -> None:
    p = page.page
    experiment_id = await slow_experiment(console)
    await p.goto(console.url + f"#/experiments/{experiment_id}")
    await p.get_by_label("Agent", exact=True).select_option(console.fake_id)
    await p.get_by_role("button", name="Start job").click()
    await expect(p.locator("h1")).to_have_text(re.compile(r"^Job job_"))
    job_id = (await p.locator("h1 .id").inner_text()).strip()

    await expect(p.locator("#job-status .badge")).to_have_text("running", timeout=30_000)
    await expect(p.locator("#live-progress")).to_contain_text("40%")
    await expect(p.locator("#live-progress")).to_contain_text("warming up")
    await console.fake.log_line(job_id, "loading the weights")
    await expect(p.locator("#log")).to_contain_text("loading the weights", timeout=30_000)
    await expect(p.locator("#timeline li[data-step='running'] time")).to_be_visible()

    await p.get_by_role("button", name="Cancel job").click()
    await expect(p.locator("#job-status .badge")).to_have_text("cancelled", timeout=30_000)
    await expect(p.locator("#timeline li[data-step='end']")).to_contain_text("cancelled")
    job = await console.get(f"/api/v1/jobs/{job_id}")
    assert job["status"]["status"] == "cancelled"
    assert page.errors == []


async def test_a_runs_page_shows_what_each_job_is_doing_and_cancels_the_run(
    console: Console, page: Watched
) -> None:
    p = page.page
    run = {"experiment_id": await slow_experiment(console), "agents": [console.fake_id]}
    async with httpx.AsyncClient(base_url=console.api.url, timeout=30) as http:
        started = await http.post("/api/v1/runs", json=run)
    assert started.status_code == 201, started.text
    await p.goto(console.url + f"#/runs/{started.json()['run_id']}")

    job = p.locator(f"#run-progress tr[data-agent='{console.fake_id}'] [data-job]")
    await expect(job.locator(".badge")).to_have_text("running", timeout=30_000)
    await expect(job.locator(".stage")).to_have_text("warming up, 40%")
    await p.get_by_role("button", name="Cancel run").click()
    await expect(p.locator("#run-status")).to_have_text("cancelled", timeout=30_000)
    await expect(job.locator(".badge")).to_have_text("cancelled")
    await expect(job.locator(".stage")).to_have_count(0)
    assert page.errors == []


async def test_bad_yaml_shows_its_error_at_the_field(console: Console, page: Watched) -> None:
    p = page.page
    await p.goto(console.url + "#/experiments/new")
    editor = p.get_by_label("Experiment (YAML or JSON)")
    errors = p.locator("#document-errors li")

    await editor.fill("id: broken\nname: [unclosed\nmodel: none\n")
    await p.get_by_role("button", name="Create").click()
    await expect(errors).to_have_count(1)
    await expect(errors).to_contain_text("not valid YAML or JSON: line 3")

    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    bad = experiment_yaml(bad_id).replace("[32, 48]", "[32, big]")
    await editor.fill(bad.replace("name: matmul in the console\n", ""))
    await p.get_by_role("button", name="Create").click()
    await expect(errors).to_have_count(1)
    await expect(p.locator("#document-errors li[data-field='name']")).to_contain_text(
        "Field required"
    )

    await editor.fill(bad)
    await p.get_by_role("button", name="Create").click()
    size = p.locator("#document-errors li[data-field='task.params.matrix_sizes.1']")
    await expect(size).to_contain_text("line 8")
    await expect(size.locator(".message")).to_contain_text("valid integer")
    await expect(errors).to_have_count(1)
    # The line is one keypress away: its button selects it in the editor.
    await size.get_by_role("button", name="line 8").press("Enter")
    selected = await editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
    assert selected == "    matrix_sizes: [32, big]"
    stored = (await console.get("/api/v1/experiments/"))["experiments"]
    assert bad_id not in [e["id"] for e in stored]
    assert page.errors == []


async def test_an_agent_registered_unavailable_with_its_reason_and_unregistered(
    console: Console, stack: Stack, page: Watched
) -> None:
    gone = FakeAgent(stack.root, f"gone-{uuid.uuid4().hex[:6]}")
    await gone.start_and_wait()
    p = page.page
    await p.goto(console.url + "#/agents")
    await p.get_by_label("Agent URL").fill(gone.url)
    await p.get_by_role("button", name="Register", exact=True).click()
    card = p.locator(f"article[data-agent='{gone.agent_id}']")
    await expect(card.locator(".badge").first).to_have_text("idle")
    gone.stop()
    await expect(card.locator(".badge").first).to_have_text("unavailable", timeout=30_000)
    await expect(card.locator(".reason")).to_contain_text("failed")
    p.once("dialog", lambda dialog: dialog.accept())
    await card.get_by_role("button", name="Unregister").click()
    await expect(card).to_have_count(0)
    agents = (await console.get("/api/v1/agents/"))["agents"]
    assert gone.agent_id not in [a["agent_id"] for a in agents]
    assert page.errors == []


async def test_the_key_is_asked_once_and_kept_in_a_strict_httponly_cookie(
    stack: Stack, context: BrowserContext
) -> None:
    key = f"console-key-{uuid.uuid4().hex}"
    api = stack.api_process("console-keyed", RUCKUS_API_KEY=key)
    await api.start_and_wait()
    try:
        page = await watched_page(context)
        p = page.page
        await p.goto(api.url + "/")
        dialog = p.get_by_role("dialog", name="API key")
        await expect(dialog).to_be_visible()
        await p.get_by_label("Key", exact=True).fill(key)
        await p.get_by_label("Key", exact=True).press("Enter")
        await expect(dialog).to_be_hidden()
        await expect(p.locator("h1")).to_have_text("Agents")
        (cookie,) = await context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert key not in cookie["value"]
        assert await p.evaluate("document.cookie") == ""

        # A second page of the same browser is not asked again.
        again = await watched_page(context)
        await again.page.goto(api.url + "/#/experiments")
        await expect(again.page.locator("h1")).to_have_text("Experiments")
        await expect(again.page.get_by_role("dialog", name="API key")).to_be_hidden()
        assert page.errors == [] and again.errors == []

        jar = {cookie["name"]: cookie["value"]}
        body = {"experiment_spec": {"name": "x", "model": "none",
                "task": {"name": "m", "type": "compute_benchmark"}}}  # fmt: skip
        async with (
            httpx.AsyncClient(base_url=api.url, timeout=30) as http,
            httpx.AsyncClient(base_url=api.url, timeout=30, cookies=jar) as browser_like,
        ):
            assert (await http.get("/api/v1/agents/")).status_code == 401
            assert (await browser_like.get("/api/v1/agents/")).status_code == 200
            # A cross-site form post carries the cookie (were it not SameSite) but no header.
            forged = await browser_like.post("/api/v1/experiments/", json=body)
            assert forged.status_code == 403, forged.text
            signed = await browser_like.post(
                "/api/v1/experiments/", json=body, headers={"X-Ruckus-Console": "1"}
            )
            assert signed.status_code == 200, signed.text
            bearer = {"Authorization": f"Bearer {key}"}
            assert (await http.post("/api/v1/experiments/", json=body, headers=bearer)).is_success
            wrong = await http.post(
                "/console/session", json={"key": "wrong"}, headers={"X-Ruckus-Console": "1"}
            )
            assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
            config = (await http.get("/console/config")).json()
            assert config["key_required"] and not config["signed_in"]
    finally:
        api.stop()


async def test_the_console_works_from_the_keyboard(console: Console, page: Watched) -> None:
    p = page.page
    await p.goto(console.url + "#/agents")
    await expect(p.locator("h1")).to_have_text("Agents")
    names = []
    for _ in range(4):
        await p.keyboard.press("Tab")
        names.append(await p.evaluate("document.activeElement.textContent.trim()"))
    assert names == ["Skip to content", "Ruckus", "Agents", "Experiments"]
    outline = await p.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    await p.keyboard.press("Enter")
    await expect(p.locator("h1")).to_have_text("Experiments")
    await expect(p.locator("nav a[aria-current='page']")).to_have_text("Experiments")
    assert page.errors == []
