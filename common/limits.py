"""Bounds on the documents people send: nesting depth, size, finite numbers, encodable text.

Every process that carries a document (storage, Temporal payloads, the worker decoding them)
handles what passes these checks; what fails them is refused where it arrives, naming the place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

# Far below what JSON parsers and pydantic refuse (200 to 1000 levels) and far above what an
# experiment needs (its params sit 3 levels down, a prompt's messages 6).
MAX_DEPTH = 32
# An experiment travels in every job's workflow input; Temporal warns past 512 KiB a payload.
MAX_EXPERIMENT_BYTES = 256 * 1024
# What a problem report names at most, so the answer stays small.
MAX_PROBLEMS = 20

Location = tuple[str | int, ...]


def problems(value: Any, max_depth: int = MAX_DEPTH) -> Iterator[tuple[Location, str, str]]:
    """(location, kind, message) of each place in `value` that breaks a bound, at most a few."""
    found = 0
    stack: list[tuple[Location, Any, int]] = [((), value, 0)]
    while stack and found < MAX_PROBLEMS:
        location, item, depth = stack.pop()
        problem = _problem(item, depth, max_depth)
        if problem is not None:
            found += 1
            yield location, *problem
            continue
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str) and not _encodable(key):
                    found += 1
                    yield (*location, _shown(key)), "invalid_text", _BAD_TEXT.format("a name")
                stack.append(((*location, key), child, depth + 1))
        elif isinstance(item, list):
            stack.extend(
                ((*location, i), child, depth + 1) for i, child in reversed(list(enumerate(item)))
            )


_BAD_TEXT = "{} that is not valid Unicode (a lone surrogate such as \\ud800)"


def _problem(item: Any, depth: int, max_depth: int) -> tuple[str, str] | None:
    if isinstance(item, float) and not math.isfinite(item):
        return "finite_number", f"{_spelled(item)} is not a number JSON allows: it must be finite"
    if isinstance(item, str) and not _encodable(item):
        return "invalid_text", _BAD_TEXT.format("text")
    if isinstance(item, dict | list) and depth >= max_depth:
        return (
            "too_deep",
            f"nested deeper than {max_depth} levels: a document may nest objects and lists "
            f"at most {max_depth} levels deep",
        )
    return None


def _spelled(number: float) -> str:
    """As JSON parsers that accept them spell it."""
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (call after `problems` found nothing)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def json_safe(value: Any, max_depth: int = 8, max_chars: int = 1024) -> Any:
    """`value` made fit to echo in an error answer: finite, encodable, shallow and short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        shown = _shown(value)
        return shown if len(shown) <= max_chars else shown[:max_chars] + "..."
    if isinstance(value, dict | list | tuple):
        if max_depth <= 0:
            return "..."
        if isinstance(value, dict):
            items = list(value.items())[:50]
            return {_shown(str(k)): json_safe(v, max_depth - 1, max_chars) for k, v in items}
        return [json_safe(v, max_depth - 1, max_chars) for v in list(value)[:50]]
    return json_safe(str(value), max_depth, max_chars)
