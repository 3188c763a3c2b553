"""Shared test set-up: the longest modules start first."""

from __future__ import annotations

import pytest

# The modules that take longest, longest first (measured with --durations=0). Started first,
# they do not leave one test process running alone at the end while the other waits.
LONGEST_FIRST = [
    "tests/chaos/test_chaos.py",
    "tests/api/test_scaled_out.py",
    "tests/stack/test_dev.py",
    "tests/api/test_load.py",
    "tests/console/test_console.py",
    "tests/api/test_cli.py",
    "tests/api/test_runs.py",
    "tests/agent/test_bounded_records.py",
    "tests/api/test_callbacks.py",
    "tests/api/test_agent_follow.py",
    "tests/api/test_cli_agents.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every process orders alike, and a module's tests stay together (the sort is stable)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
