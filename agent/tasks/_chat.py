"""One chat completion over the OpenAI-compatible HTTP API, timed as its answer arrives."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource

from agent.redaction import mask_text
from agent.tasks import progress
from agent.tasks.output import TaskError

DETAIL_CHARS = 300
STREAM_DONE = "[DONE]"


@dataclass
class Exchange:
    """What came back, and when: times are seconds since the request was sent."""

    url: str
    streamed: bool
    answer: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    e2e_seconds: float = 0.0
    # Arrival of each streamed chunk that carried generated text (answer or reasoning).
    token_times: list[float] = field(default_factory=list)
    events: int = 0
    notes: list[str] = field(default_factory=list)


def chat(url: str, body: dict[str, Any], api_key: str | None, timeout: float) -> Exchange:
    """POST `body` to `url`; TaskError for an error answer, no answer, or one past `timeout`."""
    return asyncio.run(_chat(url, body, api_key, timeout))


async def _chat(url: str, body: dict[str, Any], api_key: str | None, timeout: float) -> Exchange:
    exchange = Exchange(url=url, streamed=bool(body.get("stream")))
    # The asyncio deadline bounds the whole exchange; httpx's own timeouts only back it up.
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout + 5)) as client:
        try:
            async with asyncio.timeout(timeout):
                await _exchange(client, body, api_key, exchange)
        except TimeoutError:
            progress = f" ({exchange.events} stream events had arrived)" if exchange.events else ""
            raise TaskError(
                f"the endpoint {url} did not finish answering within the request timeout of "
                f"{timeout:g} s{progress}"
            ) from None
        except httpx.HTTPError as exc:
            raise TaskError(
                f"could not talk to the endpoint {url}: {type(exc).__name__}: {exc}"
            ) from None
    return exchange


async def _exchange(
    client: httpx.AsyncClient, body: dict[str, Any], api_key: str | None, exchange: Exchange
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if exchange.streamed:
        headers |= {"Accept": "text/event-stream"}
    # Everything read from the endpoint is masked as it arrives, before any of it is cut short
    # or kept: an endpoint may echo the key it was sent anywhere.
    secrets = [api_key] if api_key else []
    start = time.perf_counter()
    async with client.stream("POST", exchange.url, json=body, headers=headers) as response:
        if response.status_code >= 400:
            await response.aread()
            raise TaskError(
                f"the endpoint answered HTTP {response.status_code} to POST {exchange.url}: "
                f"{_error_detail(response, secrets)}"
            )
        content_type = response.headers.get("content-type", "")
        progress.report("reading the answer")
        if exchange.streamed and "text/event-stream" in content_type:
            await _read_stream(response, exchange, start, secrets)
            return
        await response.aread()
        exchange.e2e_seconds = time.perf_counter() - start
    if exchange.streamed:
        exchange.streamed = False
        exchange.notes.append(
            f"streaming was asked for but the endpoint answered with one {content_type or 'body'}"
        )
    _read_completion(_json(response, secrets), exchange)


async def _read_stream(
    response: httpx.Response, exchange: Exchange, start: float, secrets: list[str]
) -> None:
    async for event in EventSource(response).aiter_sse():
        data = mask_text(event.data, secrets).strip()
        if not data:
            continue
        if data == STREAM_DONE:
            break
        exchange.events += 1
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            raise TaskError(f"the endpoint sent a stream event that is not JSON: {data[:80]!r}")
        if chunk.get("error"):
            raise TaskError(f"the endpoint reported an error mid-stream: {_message(chunk)}")
        exchange.model = exchange.model or chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            exchange.usage = chunk["usage"]
        choice = _first_choice(chunk)
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        thought = delta.get("reasoning_content") or delta.get("reasoning") or ""
        if text or thought:
            exchange.token_times.append(time.perf_counter() - start)
            progress.report(f"streaming the answer: {len(exchange.token_times)} chunks")
            exchange.answer += text
            exchange.reasoning += thought
        exchange.finish_reason = choice.get("finish_reason") or exchange.finish_reason
    exchange.e2e_seconds = time.perf_counter() - start


def _read_completion(answer: dict[str, Any], exchange: Exchange) -> None:
    choice = _first_choice(answer)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise TaskError(
            f"the endpoint's answer is not a chat completion (no choices[0].message): "
            f"{json.dumps(answer)[:DETAIL_CHARS]}"
        )
    exchange.answer = message.get("content") or ""
    exchange.reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    exchange.finish_reason = choice.get("finish_reason")
    exchange.model = answer.get("model")
    exchange.usage = answer["usage"] if isinstance(answer.get("usage"), dict) else None


def _first_choice(payload: dict[str, Any]) -> dict[str, Any]:
    # One completion is asked for (no `n`), so only the first choice matters.
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _json(response: httpx.Response, secrets: list[str]) -> dict[str, Any]:
    text = mask_text(response.text, secrets)
    try:
        payload = json.loads(text)
    except ValueError:
        raise TaskError(f"the endpoint's answer is not JSON: {text[:DETAIL_CHARS]!r}") from None
    if not isinstance(payload, dict):
        raise TaskError(f"the endpoint's answer is not a JSON object: {text[:80]!r}")
    return payload


def _error_detail(response: httpx.Response, secrets: list[str]) -> str:
    text = mask_text(response.text, secrets)
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:DETAIL_CHARS] or response.reason_phrase
    if isinstance(payload, dict):
        return _message(payload)[:DETAIL_CHARS]
    return json.dumps(payload)[:DETAIL_CHARS]


def _message(payload: dict[str, Any]) -> str:
    """The human part of an OpenAI-style error: error.message, error, detail, or the whole."""
    error = payload.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if payload.get("detail"):
        return str(payload["detail"])
    return json.dumps(payload)
