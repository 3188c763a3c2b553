"""The optional API key, and CORS for the web UI on another origin."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from common.settings import ServerSettings
from common.storage import StorageBackend
from tests.api.conftest import Stack, asgi_client, experiment_body, running

KEY = "s3cret-key-for-tests"
PROTECTED = [
    ("GET", "/api/v1/agents/"),
    ("GET", "/api/v1/agents/status"),
    ("GET", "/api/v1/experiments/"),
    ("POST", "/api/v1/experiments/"),
    ("GET", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/job_00000001"),
    ("DELETE", "/api/v1/jobs/job_00000001"),
    ("GET", "/api/v1/results"),
    ("POST", "/api/v1/agents/register"),
]


@pytest.fixture
async def keyed_app(stack: Stack, storage: StorageBackend) -> AsyncIterator[FastAPI]:
    settings = ServerSettings(api_key=SecretStr(KEY))
    app = create_app(
        settings,
        storage=storage,
        temporal_client=await stack.temporal.client(),
        job_settings=stack.settings,
    )
    async with running(app):
        yield app


async def test_with_a_key_every_endpoint_but_health_requires_it(
    keyed_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with asgi_client(keyed_app) as http:
        for method, path in PROTECTED:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                r = await http.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"
                assert "Authorization: Bearer" in r.json()["detail"]
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy"

    async with asgi_client(keyed_app, headers={"Authorization": f"Bearer {KEY}"}) as http:
        assert (await http.get("/api/v1/agents/")).status_code == 200
        created = await http.post("/api/v1/experiments/", json=experiment_body())
        assert created.status_code == 200
        assert (await http.get("/api/v1/jobs")).status_code == 200
    assert KEY not in caplog.text


async def test_without_a_key_nothing_asks_for_one(http: httpx.AsyncClient) -> None:
    for method, path in PROTECTED[:3]:
        r = await http.request(method, path)
        assert r.status_code == 200, (method, path)
    r = await http.get("/api/v1/experiments/", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 200


async def test_cors_allows_the_configured_web_ui_origins_only(http: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    r = await http.options("/api/v1/jobs", headers={"Origin": "http://localhost:5173", **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    r = await http.get("/api/v1/agents/", headers={"Origin": "http://localhost:3000"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"

    # The API's own pages (the console) are always welcome.
    own = {"Origin": "http://localhost:8000", **preflight}
    assert (await http.options("/api/v1/jobs", headers=own)).status_code == 200


async def test_a_refused_origin_is_told_in_the_log_with_the_setting_to_change(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    r = await http.options("/api/v1/jobs", headers={"Origin": "http://evil.example", **preflight})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    assert "http://evil.example" in caplog.text and "RUCKUS_CORS_ORIGINS" in caplog.text


async def test_cors_opened_to_any_origin_with_a_star(stack: Stack, storage: StorageBackend) -> None:
    app = create_app(
        ServerSettings(cors_origins=["*"]),
        storage=storage,
        temporal_client=await stack.temporal.client(),
    )
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    async with running(app), asgi_client(app) as http:
        anyone = {"Origin": "http://any.example", **preflight}
        r = await http.options("/api/v1/jobs", headers=anyone)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "http://any.example")


def test_cors_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUCKUS_CORS_ORIGINS", '["https://ui.example"]')
    monkeypatch.setenv("RUCKUS_API_KEY", "")
    settings = ServerSettings()
    assert settings.cors_origins == ["https://ui.example"]
    monkeypatch.setenv("RUCKUS_CORS_ORIGINS", "https://a.example, https://b.example")
    assert ServerSettings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("RUCKUS_CORS_ORIGINS", "*")
    assert ServerSettings().allowed_origins == ["*"]
    assert settings.api_key is None  # an empty variable means no key
