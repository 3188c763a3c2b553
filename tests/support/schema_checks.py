"""The schemathesis check both server fuzz runs use: 5xx only where the API documents it."""

from __future__ import annotations

from typing import Any

import schemathesis


def documented_5xx_only(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """No 500; 502/503 only for an agent or dependency out of reach, with a detail.

    Passed per call rather than registered, so it never leaks into other schema tests. It
    replaces the built-in "no 5xx at all": registering an unreachable agent URL is rightly 503.
    """
    code = response.status_code
    assert code != 500, f"internal error: {response.text[:500]}"
    if code >= 500:
        assert code in (502, 503), f"undocumented {code}: {response.text[:500]}"
        assert isinstance(response.json().get("detail"), str), response.text[:500]
    return True
