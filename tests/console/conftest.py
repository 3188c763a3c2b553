"""A stack with an API, two real agents and a controllable one; chromium pages that record
console errors and leave a screenshot when their test fails."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.api.conftest import Stack, register
from tests.api.test_comparison import real_agent
from tests.support.browser import chromium
from tests.support.stack import FakeAgent, HttpService

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "console"
TEMPORAL_UI = "http://127.0.0.1:9/temporal-ui"
# A shared 2-core machine may take seconds to draw a chart; a deadline, not a wait.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("console"))
    await s.temporal.start_and_wait()
    await s.start_worker()
    yield s
    s.worker.stop()
    s.temporal.stop()


@dataclass
class Console:
    """The API serving the console, and the agents registered with it."""

    api: HttpService
    real_agents: list[str]
    fake: FakeAgent
    fake_id: str

    @property
    def url(self) -> str:
        return self.api.url + "/"

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.api.url, timeout=30) as http:
            response = await http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
async def console(stack: Stack) -> AsyncIterator[Console]:
    api = stack.api_process("console", RUCKUS_TEMPORAL_UI_URL=TEMPORAL_UI)
    agents = [real_agent(stack, f"bench-{i}-{uuid.uuid4().hex[:6]}") for i in (1, 2)]
    fake = FakeAgent(stack.root, f"slow-{uuid.uuid4().hex[:6]}")
    for process in (api, *agents, fake):
        await process.start_and_wait()
    # Its jobs run until told otherwise, reporting a stage and progress.
    await fake.control(job_duration=None, stage="warming up", progress=0.4)
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            ids = [await register(http, a.url) for a in agents]
            fake_id = await register(http, fake.url)
        yield Console(api, ids, fake, fake_id)
    finally:
        for process in (fake, *agents, api):
            process.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@dataclass
class Watched:
    """A page and every console error or uncaught exception it had."""

    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


async def watched_page(context: BrowserContext) -> Watched:
    page = await context.new_page()
    watched = Watched(page)
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    return watched


@pytest.fixture
async def context(
    browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile in the viewer's zone of Tokyo; a screenshot of each of its
    pages is kept under test-artifacts/console/ when the test fails."""
    ctx = await browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo", locale="en-US"
    )
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
            for i, page in enumerate(ctx.pages):
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Watched:
    return await watched_page(context)
