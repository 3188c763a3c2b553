"""A small OpenAI-compatible chat completions server that answers deterministically.

Run as `uvicorn tests.agent.fake_openai:app`. When FAKE_OPENAI_API_KEY is set, requests must
carry `Authorization: Bearer <that key>`. A request picks a behaviour with `fake_mode` in its
body (the task's `extra_body` puts it there):
- "ok" (default): the answer; usage reported (on a stream only with stream_options.include_usage)
- "no_usage": the answer without any usage report
- "error": HTTP 500 with an OpenAI-style error body
- "hang": no answer at all (streaming: one chunk, then nothing)
- "echo_key": the answer, with the bearer key echoed in `model` and in `usage` (a misbehaving
  endpoint)
- "error_echo": HTTP 500 whose message quotes the key past its 280th character, so that cutting
  the message at 300 characters leaves a prefix of the key
The answer is "Echo:" followed by the words of the last user message, one streamed chunk per
word; a token is a word, so usage counts are word counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

CHUNK_DELAY_SECONDS = 0.01  # between streamed words, so arrival times differ measurably
ERROR_MESSAGE = "the fake model crashed"

app = FastAPI()
received: list[dict[str, Any]] = []


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/requests")
async def requests() -> list[dict[str, Any]]:
    """Every chat request received: its body and whether its bearer key was right."""
    return received


@app.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
    body = await request.json()
    key = os.environ.get("FAKE_OPENAI_API_KEY")
    authorized = key is None or request.headers.get("authorization") == f"Bearer {key}"
    received.append({"body": body, "authorized": authorized})
    if not authorized:
        error = {"message": "invalid API key", "type": "invalid_request_error"}
        return JSONResponse({"error": error}, status_code=401)
    mode = body.get("fake_mode", "ok")
    given = request.headers.get("authorization", "").removeprefix("Bearer ")
    if mode == "error":
        error = {"message": ERROR_MESSAGE, "type": "server_error"}
        return JSONResponse({"error": error}, status_code=500)
    if mode == "error_echo":
        error = {"message": f"{'x' * 280} key={given} was refused", "type": "server_error"}
        return JSONResponse({"error": error}, status_code=500)
    words = answer_words(body["messages"])
    usage: dict[str, Any] | None = None
    if mode != "no_usage":
        usage = usage_of(body["messages"], words)
    model = body["model"]
    if mode == "echo_key" and usage is not None:
        model = f"{model}@{given}"
        usage |= {"api_key": given, given: 1, "details": [{"seen": f"Bearer {given}"}]}
    if body.get("stream"):
        include = (body.get("stream_options") or {}).get("include_usage", False)
        events = stream(model, words, usage if include else None, hang=mode == "hang")
        return StreamingResponse(events, media_type="text/event-stream")
    if mode == "hang":
        await asyncio.sleep(3600)
    answer: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(words)},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        answer["usage"] = usage
    return JSONResponse(answer)


def answer_words(messages: list[dict[str, Any]]) -> list[str]:
    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return ["Echo:", *last_user.split()]


def usage_of(messages: list[dict[str, Any]], words: list[str]) -> dict[str, int]:
    prompt = sum(len(m["content"].split()) for m in messages)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(words),
        "total_tokens": prompt + len(words),
    }


async def stream(
    model: str, words: list[str], usage: dict[str, Any] | None, *, hang: bool
) -> AsyncIterator[str]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        return f"data: {json.dumps(chunk | {'choices': choices} | extra)}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    for i, word in enumerate(words):
        await asyncio.sleep(CHUNK_DELAY_SECONDS)
        yield event([{"index": 0, "delta": {"content": word if i == 0 else f" {word}"}}])
        if hang:
            await asyncio.sleep(3600)
    yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield event([], usage=usage)
    yield "data: [DONE]\n\n"
