"""Secrets kept out of what the agent stores and shows.

Inline in an experiment spec: found so the job is refused, masked before storing. Named by the
spec (`api_key_env`): their values are masked in every string of a job's status and result,
before anything is cut, so not even a prefix of one survives.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from common.models import ExperimentSpec

MASK = "***"
# A run of this many leading characters of a secret is masked too: text cut short elsewhere
# (an endpoint's own error message, say) can end in part of a key.
MIN_PREFIX = 8
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


def is_secret_variable(name: str) -> bool:
    """Whether a parameter names the environment variable of a credential (`api_key_env`)."""
    normal = name.strip().lower().replace("-", "_")
    return normal.endswith("_env") and is_secret_name(normal.removesuffix("_env"))


def spec_secrets(spec: ExperimentSpec) -> list[str]:
    """The values of the credential variables the spec names, as set where the agent runs."""
    names = {
        value
        for _, mapping in _places(spec)
        if isinstance(mapping, dict)
        for key, value in mapping.items()
        if isinstance(value, str) and is_secret_variable(str(key))
    }
    return [secret for name in sorted(names) if (secret := os.environ.get(name))]


def mask_text(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret, and every run of its first MIN_PREFIX+ characters, masked."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, MASK)
        if len(secret) <= MIN_PREFIX:
            continue
        head = secret[:MIN_PREFIX]
        start = text.find(head)
        while start != -1:
            end = start + MIN_PREFIX
            while end - start < len(secret) and text[end : end + 1] == secret[end - start]:
                end += 1
            text = text[:start] + MASK + text[end:]
            start = text.find(head, start + len(MASK))
    return text


def masked(value: Any, secrets: Sequence[str]) -> Any:
    """A copy of JSON-like data with the secrets masked in every string, keys included."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {masked(k, secrets): masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, secrets) for v in value]
    return value
