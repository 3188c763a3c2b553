"""The console's routes: its page and assets, its settings, the session, pasted documents."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError

from api.console.documents import DocumentError, parse_document
from api.console.session import CONSOLE_HEADER, COOKIE, cookie_admits, session_token
from api.schemas import CreateExperimentRequest, RequestBody
from common.limits import MAX_EXPERIMENT_BYTES
from common.settings import JobManagerSettings, ServerSettings

STATIC = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}

# Open: the page, its assets and its settings; the login that sets the session.
router = APIRouter(include_in_schema=False)
# Behind the API key, as the API is.
guarded_router = APIRouter(prefix="/console", include_in_schema=False)


class ConsoleConfig(BaseModel):
    key_required: bool = Field(description="The API has a key: the console asks for it once")
    signed_in: bool = Field(description="This browser's session cookie is valid")
    temporal_ui_url: str | None = None
    temporal_namespace: str


class LoginRequest(RequestBody):
    key: str = Field(min_length=1, max_length=4096)


class DocumentText(RequestBody):
    text: str = Field(max_length=MAX_EXPERIMENT_BYTES * 4)


class FieldError(BaseModel):
    field: str = Field(description="The field's dotted path (`task.params.runs`); empty: the whole")
    line: int | None = Field(description="The 1-based line of the document that holds it")
    message: str


class CheckedDocument(BaseModel):
    spec: dict[str, Any] | None = Field(description="The experiment as POST /experiments/ takes")
    lines: dict[str, int] = Field(description="The 1-based line of each field, by dotted path")
    errors: list[FieldError] = Field(description="Empty when the experiment would be accepted")


@router.get("/")
async def index() -> FileResponse:
    """The console: one page, its views chosen by the URL's fragment."""
    return FileResponse(STATIC / "index.html", headers=NO_CACHE)


@router.get("/console/plotly.min.js")
async def plotly_js() -> FileResponse:
    """The chart library the `plotly` package ships: nothing comes from elsewhere."""
    import plotly  # here, not at start: the API serves its first requests without it

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return FileResponse(path, media_type="text/javascript", headers=NO_CACHE)


@router.get("/console/config", response_model=ConsoleConfig)
async def config(request: Request) -> ConsoleConfig:
    """What the page needs before anything else: whether to ask for the key, where Temporal is."""
    settings: ServerSettings = request.app.state.settings
    jobs: JobManagerSettings = request.app.state.job_settings
    key = settings.api_key
    namespace = jobs.temporal_namespace or os.environ.get("TEMPORAL_NAMESPACE") or "default"
    return ConsoleConfig(
        key_required=key is not None,
        signed_in=key is None or cookie_admits(key, request),
        temporal_ui_url=settings.temporal_ui_url.rstrip("/") if settings.temporal_ui_url else None,
        temporal_namespace=namespace,
    )


@router.post("/console/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_in(body: LoginRequest, request: Request) -> Response:
    """Check the API key once and keep the session in an HttpOnly, SameSite=Strict cookie."""
    key = request.app.state.settings.api_key
    if request.headers.get(CONSOLE_HEADER) != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"send `{CONSOLE_HEADER}: 1`")
    if key is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    if not hmac.compare_digest(body.key.encode(), key.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "that is not the server's API key")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        COOKIE,
        session_token(key),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.delete("/console/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(request: Request) -> Response:
    """Forget this browser's session."""
    if request.headers.get(CONSOLE_HEADER) != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"send `{CONSOLE_HEADER}: 1`")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@guarded_router.post("/experiment-document", response_model=CheckedDocument)
async def experiment_document(body: DocumentText) -> CheckedDocument:
    """A pasted or uploaded experiment (YAML or JSON) as JSON, checked as POST
    /api/v1/experiments/ would check it, each error with its field and line; nothing stored."""
    try:
        spec, lines = parse_document(body.text)
    except DocumentError as err:
        return CheckedDocument(
            spec=None, lines={}, errors=[FieldError(field="", line=err.line, message=str(err))]
        )
    try:
        CreateExperimentRequest.model_validate({"experiment_spec": spec})
    except ValidationError as err:
        errors = []
        for entry in err.errors(include_url=False, include_input=False, include_context=False):
            field = ".".join(str(part) for part in entry["loc"][1:])
            errors.append(FieldError(field=field, line=_line(lines, field), message=entry["msg"]))
        return CheckedDocument(spec=spec, lines=lines, errors=errors)
    return CheckedDocument(spec=spec, lines=lines, errors=[])


def _line(lines: dict[str, int], field: str) -> int | None:
    """The line of `field`, else of the nearest enclosing field the document has."""
    parts = field.split(".")
    while parts:
        if (line := lines.get(".".join(parts))) is not None:
            return line
        parts.pop()
    return None
