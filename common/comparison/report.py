"""A comparison as a self-contained HTML page (Plotly charts, its JS inlined) or as CSV."""

from __future__ import annotations

import csv
import functools
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from common.comparison.model import CellStats, Comparison, ComparisonRow, Hardware, MetricColumn

# Plotly's default qualitative palette, so a row keeps its colour across charts.
PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]
CSV_COLUMNS = [
    "key", "label", "cpu_model", "cores_logical", "memory_gb", "gpus", "metric", "unit",
    "higher_is_better", "n", "mean", "min", "max", "stddev", "ratio_to_best", "jobs", "failed",
]  # fmt: skip


def render_csv(comparison: Comparison) -> str:
    """One line per row and metric (a row without any measured metric: one line, no metric)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in comparison.rows:
        shared = {
            "key": row.key,
            "label": row.label,
            "cpu_model": row.hardware.cpu_model,
            "cores_logical": row.hardware.cores_logical,
            "memory_gb": row.hardware.memory_gb,
            "gpus": gpu_text(row.hardware),
            "jobs": len(row.job_ids),
            "failed": "; ".join(f"{f.job_id} ({f.status}): {f.error}" for f in row.failed),
        }
        measured = [(m, row.cells.get(m.name)) for m in comparison.metrics]
        lines = [(m, c) for m, c in measured if c is not None] or [(None, None)]
        for metric, cell in lines:
            values = {**shared, **_metric_values(metric), **(cell.model_dump() if cell else {})}
            writer.writerow(["" if values.get(c) is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()


def render_html(
    comparison: Comparison, *, title: str, details: Sequence[tuple[str, str]] = ()
) -> str:
    """The page: details, the table, failed jobs, one chart per metric; works offline."""
    figures = {f"chart-{i}": _figure(comparison, m) for i, m in enumerate(comparison.metrics)}
    charts = "\n".join(
        f'<figure class="chart" id="{chart_id}" data-metric="{html.escape(m.name)}"></figure>'
        for chart_id, m in zip(figures, comparison.metrics, strict=True)
    )
    return _PAGE.format(
        title=html.escape(title),
        details="".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in details),
        table=_table(comparison),
        failed=_failed(comparison.rows),
        charts=charts or "<p>No metric was measured: no job of the comparison completed.</p>",
        plotly_js=plotly_js(),
        figures=_script_json(figures),
    )


def fmt(value: float | None) -> str:
    """A statistic as the report shows it: four significant digits."""
    return "" if value is None else f"{value:.4g}"


def gpu_text(hardware: Hardware) -> str:
    return ", ".join(
        (g.name or "GPU") + (f" {g.memory_total_mb / 1024:.0f} GB" if g.memory_total_mb else "")
        for g in hardware.gpus
    )


def metric_heading(metric: MetricColumn) -> str:
    unit = f" ({metric.unit})" if metric.unit else ""
    direction = {True: "higher is better", False: "lower is better", None: ""}
    arrow = direction[metric.higher_is_better]
    return f"{metric.name}{unit}" + (f", {arrow}" if arrow else "")


def _metric_values(metric: MetricColumn | None) -> dict[str, Any]:
    if metric is None:
        return {}
    return {
        "metric": metric.name,
        "unit": metric.unit,
        "higher_is_better": _bool_text(metric.higher_is_better),
    }


def _figure(comparison: Comparison, metric: MetricColumn) -> dict[str, Any]:
    """Bars of the mean per row, min to max as error bars, n and stddev on hover."""
    rows = [(i, r, r.cells.get(metric.name)) for i, r in enumerate(comparison.rows)]
    measured: list[tuple[int, ComparisonRow, CellStats]] = [
        (i, r, c) for i, r, c in rows if c is not None
    ]
    bar = {
        "type": "bar",
        "x": [r.label for _, r, _ in measured],
        "y": [c.mean for _, _, c in measured],
        "marker": {"color": [PALETTE[i % len(PALETTE)] for i, _, _ in measured]},
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": [c.max - c.mean for _, _, c in measured],
            "arrayminus": [c.mean - c.min for _, _, c in measured],
        },
        "customdata": [
            [c.n, fmt(c.min), fmt(c.max), fmt(c.stddev) or "-", fmt(c.ratio_to_best) or "-"]
            for _, _, c in measured
        ],
        "hovertemplate": "%{x}<br>mean %{y:.4g}<br>min %{customdata[1]}, max %{customdata[2]}"
        "<br>stddev %{customdata[3]}, n %{customdata[0]}<br>ratio to best %{customdata[4]}"
        "<extra></extra>",
    }
    layout = {
        "title": {"text": html.escape(metric_heading(metric))},
        "yaxis": {"title": {"text": html.escape(metric.unit or "")}, "rangemode": "tozero"},
        "margin": {"t": 48, "b": 40, "l": 60, "r": 16},
        "height": 320,
        "showlegend": False,
        "template": "plotly_white",
    }
    return {"data": [bar], "layout": layout}


def _table(comparison: Comparison) -> str:
    heads = "".join(
        f"<th scope='col'>{html.escape(metric_heading(m))}</th>" for m in comparison.metrics
    )
    lines = []
    for row in comparison.rows:
        cells = "".join(_cell(row, m) for m in comparison.metrics)
        hardware = ", ".join(
            part
            for part in (
                row.hardware.cpu_model,
                f"{row.hardware.cores_logical} threads" if row.hardware.cores_logical else None,
                f"{row.hardware.memory_gb:g} GB" if row.hardware.memory_gb else None,
                gpu_text(row.hardware),
            )
            if part
        )
        status = f"{len(row.job_ids)} job(s)"
        status += f", {len(row.failed)} failed" if row.failed else ""
        status += f", {len(row.pending)} not ended" if row.pending else ""
        key = f"<div class='sub'>{html.escape(row.key)}</div>" if row.label != row.key else ""
        lines.append(
            f"<tr data-row='{html.escape(row.key)}'>"
            f"<th scope='row'>{html.escape(row.label)}{key}</th>"
            f"<td>{html.escape(hardware or 'unknown')}</td>"
            f"<td class='jobs'>{status}</td>{cells}</tr>"
        )
    return (
        "<table><thead><tr><th scope='col'>"
        + ("agent" if comparison.by == "agent" else "experiment")
        + f"</th><th scope='col'>hardware</th><th scope='col'>jobs</th>{heads}</tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>"
    )


def _cell(row: ComparisonRow, metric: MetricColumn) -> str:
    cell = row.cells.get(metric.name)
    attrs = f"data-metric='{html.escape(metric.name)}'"
    if cell is None:
        return f"<td {attrs} class='none'>-</td>"
    spread = f" ± <span class='stddev'>{fmt(cell.stddev)}</span>" if cell.stddev is not None else ""
    ratio = (
        f"<div class='sub'>ratio to best <span class='ratio'>{fmt(cell.ratio_to_best)}</span>"
        f"{' (best)' if cell.ratio_to_best == 1.0 else ''}</div>"
        if cell.ratio_to_best is not None
        else ""
    )
    return (
        f"<td {attrs}><span class='mean'>{fmt(cell.mean)}</span>{spread}"
        f"<div class='sub'>n=<span class='n'>{cell.n}</span>, <span class='min'>{fmt(cell.min)}"
        f"</span> to <span class='max'>{fmt(cell.max)}</span></div>{ratio}</td>"
    )


def _failed(rows: Sequence[ComparisonRow]) -> str:
    items = [
        f"<li><code>{html.escape(f.job_id)}</code> on {html.escape(row.label)}: "
        f"<strong>{html.escape(f.status)}</strong>: {html.escape(f.error)}</li>"
        for row in rows
        for f in row.failed
    ]
    if not items:
        return ""
    return f"<section class='failed'><h2>Failed jobs</h2><ul>{''.join(items)}</ul></section>"


def _script_json(value: Any) -> str:
    """JSON that cannot close the <script> element it sits in."""
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2328; background: #fff; }}
h1 {{ font-size: 1.5rem; margin-bottom: .25rem; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }}
dt {{ color: #59636e; }} dd {{ margin: 0; }}
table {{ border-collapse: collapse; margin: 1.5rem 0; }}
th, td {{ border: 1px solid #d1d9e0; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
td[data-metric] {{ text-align: right; font-variant-numeric: tabular-nums; }}
thead th {{ background: #f6f8fa; }}
.sub {{ color: #59636e; font-size: .85em; font-weight: normal; }}
td.jobs {{ white-space: nowrap; }}
.charts {{ display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }}
.chart {{ margin: 0; border: 1px solid #d1d9e0; min-height: 320px; }}
.failed li {{ margin: .25rem 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
<dl>{details}</dl>
{table}
{failed}
<h2>Charts</h2>
<p class="sub">Bars are the mean over every measured run; whiskers span min to max.</p>
<div class="charts">
{charts}
</div>
<script>{plotly_js}</script>
<script>
const FIGURES = {figures};
for (const [id, figure] of Object.entries(FIGURES)) {{
  Plotly.newPlot(id, figure.data, figure.layout, {{displaylogo: false, responsive: true}});
}}
</script>
</body>
</html>
"""


def _bool_text(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()
