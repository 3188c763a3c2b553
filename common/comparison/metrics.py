"""A metric's unit and direction, read from the names the tasks give their metrics."""

from __future__ import annotations

from common.comparison.model import MetricColumn

# Name parts (split on "_") -> unit and whether higher is better, most specific first.
_THROUGHPUT = {"gflops": "GFLOP/s", "tflops": "TFLOP/s", "gbps": "GB/s", "mbps": "MB/s"}
_DURATION = {"seconds": "s", "s": "s", "ms": "ms", "us": "µs"}
_LATENCY_PREFIXES = ("ttft", "itl", "e2e", "latency")


def metric_column(name: str) -> MetricColumn:
    """Unit and direction of a metric by its name; unknown names get neither."""
    parts = name.lower().split("_")
    if "per" in parts and parts[-1] in ("second", "s"):
        what = parts[parts.index("per") - 1] if parts.index("per") > 0 else "units"
        return MetricColumn(name=name, unit=f"{what}/s", higher_is_better=True)
    for part, unit in _THROUGHPUT.items():
        if part in parts:
            return MetricColumn(name=name, unit=unit, higher_is_better=True)
    for part, unit in _DURATION.items():
        if parts[-1] == part or (part == "seconds" and part in parts):
            return MetricColumn(name=name, unit=unit, higher_is_better=False)
    if parts[0] in _LATENCY_PREFIXES or "latency" in parts:
        return MetricColumn(name=name, unit=None, higher_is_better=False)
    if parts[-1] == "tokens":
        return MetricColumn(name=name, unit="tokens", higher_is_better=None)
    return MetricColumn(name=name)
