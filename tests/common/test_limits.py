"""Documents past a bound are found with the place that breaks it; error echoes stay safe."""

from __future__ import annotations

import json
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter

from common.limits import MAX_DEPTH, json_safe, json_size, problems
from common.models import ExperimentSpec


def nested(depth: int, leaf: Any = 1) -> Any:
    """`depth` levels of objects around `leaf`."""
    value = leaf
    for _ in range(depth):
        value = {"x": value}
    return value


def test_a_document_at_the_depth_limit_passes_and_one_level_more_is_named() -> None:
    assert list(problems(nested(MAX_DEPTH))) == []
    ((location, kind, message),) = list(problems(nested(MAX_DEPTH + 1)))
    assert location == ("x",) * MAX_DEPTH and kind == "too_deep"
    assert f"at most {MAX_DEPTH} levels" in message
    # Lists count as levels too; far deeper documents stop at the first level past the limit.
    assert [p[0] for p in problems([[[[1]]]], max_depth=3)] == [(0, 0, 0)]
    assert len(list(problems(nested(5000)))) == 1


def test_non_finite_numbers_are_named_where_they_are() -> None:
    found = list(problems({"a": [1.0, float("nan")], "b": {"c": float("-inf")}, "d": 1e308}))
    assert [(loc, kind) for loc, kind, _ in found] == [
        (("a", 1), "finite_number"),
        (("b", "c"), "finite_number"),
    ]
    assert found[0][2].startswith("NaN is not a number JSON allows")
    assert found[1][2].startswith("-Infinity")


def test_text_that_is_not_unicode_is_named_in_values_and_names() -> None:
    lone = json.loads('"\\ud800"')
    found = list(problems({"ok": "é✓", "bad": lone, lone: 1}))
    assert {(loc, kind) for loc, kind, _ in found} == {
        (("bad",), "invalid_text"),
        (("\\ud800",), "invalid_text"),
    }


def test_a_document_that_passes_is_one_a_workflow_can_carry() -> None:
    """The bound is far inside what the worker decodes (it failed at 200 levels)."""
    spec = ExperimentSpec.model_validate(
        {
            "name": "n",
            "model": "m",
            "task": {"name": "t", "type": "compute_benchmark"},
            "metrics": {"metrics": nested(MAX_DEPTH - 2)},
        }
    )
    raw = spec.model_dump(mode="json")
    assert list(problems(raw)) == []
    converter = pydantic_data_converter.payload_converter
    (back,) = converter.from_payloads(converter.to_payloads([spec]), [ExperimentSpec])
    assert back == spec


def test_json_size_counts_utf8_bytes() -> None:
    assert json_size({"a": "é"}) == len('{"a":"é"}'.encode())


def test_json_safe_makes_any_echo_serialisable_and_small() -> None:
    value = {"n": float("nan"), "deep": nested(50), "long": "y" * 5000, "t": (1, 2), "o": object()}
    safe = json_safe(value)
    text = json.dumps(safe, allow_nan=False)
    assert safe["n"] == "nan" and len(safe["long"]) < 1100 and safe["t"] == [1, 2]
    assert isinstance(safe["o"], str) and len(text) < 4000
