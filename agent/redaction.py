"""Secrets put inline in an experiment spec: found so the job is refused, masked before storing."""

from __future__ import annotations

from typing import Any

from common.models import ExperimentSpec

MASK = "***"
# Parameter names that hold a credential. `api_key_env` (a variable's name) is not one.
SECRET_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth_token",
        "bearer_token",
        "secret",
        "client_secret",
        "password",
        "authorization",
    }
)


def is_secret_name(name: str) -> bool:
    normal = name.strip().lower().replace("-", "_")
    return normal in SECRET_NAMES or normal.endswith("_api_key")


def _places(spec: ExperimentSpec) -> list[tuple[str, Any]]:
    """The mappings of a spec where a secret could be put, with the path that names each."""
    places: list[tuple[str, Any]] = [
        ("task.params", spec.task.params),
        ("framework.params", spec.framework.params),
    ]
    params = spec.task.params if isinstance(spec.task.params, dict) else {}
    template = params.get("prompt_template")
    if isinstance(template, dict):
        places.append(("task.params.prompt_template.extra_body", template.get("extra_body")))
    return places


def inline_secrets(spec: ExperimentSpec) -> list[str]:
    """The paths of credential-named keys in the spec's params (never their values)."""
    return [
        f"{where}.{name}"
        for where, mapping in _places(spec)
        if isinstance(mapping, dict)
        for name in mapping
        if is_secret_name(str(name))
    ]


def redacted(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with every inline credential value replaced by a mask, for storing and showing."""
    if not inline_secrets(spec):
        return spec
    copy = spec.model_copy(deep=True)
    for _, mapping in _places(copy):
        if isinstance(mapping, dict):
            for name in mapping:
                if is_secret_name(str(name)):
                    mapping[name] = MASK
    return copy
