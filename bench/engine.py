"""What the dev server does for a workload, counted from its Prometheus metrics.

The dev server's CPU follows the writes of workflow state to its database more than anything
else: each workflow task (started, then completed), signal and activity is one. Counting them
over the floor's rounds and the jobs' rounds says what a job costs the engine against a floor
workflow, independently of how fast the machine runs at the time.
"""

from __future__ import annotations

import re
from collections import Counter

import httpx

# What is counted: a label, and the (metric, operation, service) series that add up to it.
COUNTED: dict[str, list[tuple[str, str, str]]] = {
    "workflow state writes": [
        ("persistence_requests", "CreateWorkflowExecution", "history"),
        ("persistence_requests", "UpdateWorkflowExecution", "history"),
    ],
    "workflow tasks": [("service_requests", "RespondWorkflowTaskCompleted", "frontend")],
    "activity tasks": [("service_requests", "RespondActivityTaskCompleted", "frontend")],
    "signals (signal-with-start included)": [
        ("service_requests", "SignalWorkflowExecution", "frontend"),
        ("service_requests", "SignalWithStartWorkflowExecution", "frontend"),
    ],
    "history reads": [("persistence_requests", "ReadHistoryBranch", "history")],
    "workflow task timeout timers fired": [
        ("task_requests", "TimerActiveTaskWorkflowTaskTimeout", "history"),
    ],
}
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def engine_counts(metrics_port: int) -> Counter[str]:
    """The counters of COUNTED as the dev server at `metrics_port` has them now."""
    wanted = {series: label for label, all_series in COUNTED.items() for series in all_series}
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        metric, labels, value = sample.groups()
        found = dict(_LABEL.findall(labels))
        label = wanted.get((metric, found.get("operation", ""), found.get("service_name", "")))
        if label is not None:
            counts[label] += int(float(value))
    return counts
