"""The report's page and CSV, from a comparison built by hand."""

from __future__ import annotations

import csv
import io
import re

from common.comparison import build_comparison
from common.comparison.report import plotly_js, render_csv, render_html
from tests.comparison.test_compute import AGENTS, JOBS, RESULTS, agent


def test_the_page_loads_nothing_from_elsewhere_and_escapes_names() -> None:
    agents = {**AGENTS, "A": agent("A", "<script>alert(1)</script>")}
    page = render_html(build_comparison(JOBS, RESULTS, agents), title="Run <x>")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<title>Run &lt;x&gt;</title>" in page
    # Plotly's JS is inlined; the page around it loads nothing: no src, no link but data:.
    assert plotly_js() in page
    around = page.replace(plotly_js(), "")
    assert re.search(r"<script[^>]*\bsrc=", around) is None
    assert re.findall(r"<link[^>]*>", around) == ['<link rel="icon" href="data:,">']
    assert "http" not in around
    assert page.count('<figure class="chart"') == 3  # one per metric


def test_csv_has_one_line_per_row_and_metric_and_the_failures() -> None:
    lines = list(csv.DictReader(io.StringIO(render_csv(build_comparison(JOBS, RESULTS, AGENTS)))))
    assert [(r["key"], r["metric"]) for r in lines] == [
        ("A", "gflops_fp32_256"),
        ("A", "e2e_latency_seconds"),
        ("A", "widgets"),
        ("B", "gflops_fp32_256"),
        ("B", "e2e_latency_seconds"),
        ("C", ""),
    ]
    first = lines[0]
    assert (first["unit"], first["higher_is_better"], first["n"], first["mean"]) == (
        "GFLOP/s",
        "true",
        "4",
        "13.0",
    )
    assert lines[2]["higher_is_better"] == "" and lines[2]["ratio_to_best"] == ""
    assert lines[-1]["failed"] == (
        "job_c1 (failed): out of memory; job_c2 (cancelled): cancelled by request"
    )
