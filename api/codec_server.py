"""A codec server for the Temporal web UI and CLI: decrypts payloads for those who hold the key."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from common.body_limit import BodySizeLimit
from common.temporal import EncryptionCodec, parse_payload_key

MAX_BODY_BYTES = 64 * 1024 * 1024


def create_codec_app(payload_key: str, ui_origins: list[str]) -> FastAPI:
    """POST /encode and /decode with `{"payloads": [...]}` in protobuf JSON, as the UI sends."""
    codec = EncryptionCodec(parse_payload_key(payload_key))
    app = FastAPI(title="Ruckus codec server")
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    # The web UI calls from the browser: only its origins may read the answers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui_origins,
        allow_methods=["POST"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
        allow_credentials=True,
    )

    async def convert(request: Request, decode: bool) -> dict[str, Any]:
        payloads = json_format.Parse(await request.body(), Payloads())
        items = list(payloads.payloads)
        done = await (codec.decode(items) if decode else codec.encode(items))
        return json_format.MessageToDict(Payloads(payloads=done))

    @app.post("/encode")
    async def encode(request: Request) -> dict[str, Any]:
        return await convert(request, decode=False)

    @app.post("/decode")
    async def decode(request: Request) -> dict[str, Any]:
        return await convert(request, decode=True)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app
