"""The schemathesis checks both server fuzz runs use, passed per call so they never leak."""

from __future__ import annotations

from typing import Any

import schemathesis

# Fields whose 422 depends on the fleet, not on the request's shape: no registered agent fits.
PLACEMENT_FIELDS = {"agent_id", "selector", "agents"}


def documented_5xx_only(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """No 500; 502/503 only for an agent or dependency out of reach, with a detail.

    It replaces the built-in "no 5xx at all": registering an unreachable agent URL is rightly 503.
    """
    code = response.status_code
    assert code != 500, f"internal error: {response.text[:500]}"
    if code >= 500:
        assert code in (502, 503), f"undocumented {code}: {response.text[:500]}"
        assert isinstance(response.json().get("detail"), str), response.text[:500]
    return True


def valid_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """A schema-valid request is never refused for its shape; a 422 for one names only the
    placement fields (no agent fits the job), which the schema cannot know of.

    It replaces the built-in acceptance check, which allows no 422 at all.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return True
    entries = response.json().get("detail")
    assert isinstance(entries, list) and entries, f"schema-valid request refused: {response.text}"
    fields = {entry["loc"][-1] for entry in entries}
    assert fields <= PLACEMENT_FIELDS, f"schema-valid request refused: {response.text[:500]}"
    return True
