// Runs: the list; a run's page with each agent's jobs live and, once it ends, the comparison.

import { api, messageOf } from "./api.js";
import { TERMINAL, agentLabel, agentNames, badge, every, fmt, h, id, replace, time, update, workflowLink } from "./ui.js";

// Plotly's default qualitative palette, as the HTML report uses it: a row keeps its colour.
const PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"];

let plotly = null;

function loadPlotly() {
  plotly ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/console/plotly.min.js";
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => reject(new Error("the chart library did not load"));
    document.head.append(script);
  });
  return plotly;
}

export function runsPage(main, query) {
  const error = h("p", { class: "error", role: "alert" });
  const table = h("div", {});
  const experiment = query.get("experiment");
  replace(main, h("h1", {}, "Runs"), experiment ? h("p", {}, "Of experiment ", id(experiment)) : null, error, table);
  const params = new URLSearchParams({ limit: "100" });
  if (experiment) params.set("experiment_id", experiment);
  return every(
    3000,
    async () => {
      const { runs } = await api(`/api/v1/runs?${params}`);
      if (!runs.length) {
        update(table, h("p", { class: "muted" }, "No run yet: start one from an experiment's page."));
        return;
      }
      update(
        table,
        h(
          "table",
          { id: "runs-table" },
          h("thead", {}, h("tr", {}, ["run", "status", "experiment", "agents", "jobs", "created", "ended"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            runs.map((r) => {
              const done = r.jobs.filter((j) => TERMINAL.has(j.status.status)).length;
              return h(
                "tr",
                { "data-run": r.run_id },
                h("td", {}, id(r.run_id, `#/runs/${encodeURIComponent(r.run_id)}`)),
                h("td", {}, badge(r.status)),
                h("td", {}, id(r.experiment_id, `#/experiments/${encodeURIComponent(r.experiment_id)}`)),
                h("td", { class: "num" }, r.agents.length),
                h("td", { class: "num" }, `${done}/${r.jobs.length}`),
                h("td", {}, time(r.created_time)),
                h("td", {}, time(r.ended_time)),
              );
            }),
          ),
        ),
      );
    },
    error,
  );
}

function progressView(run, names) {
  const byAgent = new Map(run.agents.map((a) => [a, []]));
  for (const job of run.jobs) {
    if (!byAgent.has(job.agent_id)) byAgent.set(job.agent_id, []);
    byAgent.get(job.agent_id).push(job);
  }
  return h(
    "table",
    { id: "run-progress" },
    h("thead", {}, h("tr", {}, ["agent", "done", "jobs"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      [...byAgent].map(([agent, jobs]) => {
        const done = jobs.filter((j) => TERMINAL.has(j.status.status)).length;
        return h(
          "tr",
          { "data-agent": agent },
          h("td", {}, agentLabel(agent, names)),
          h("td", { class: "num" }, h("progress", { max: jobs.length || 1, value: done, "aria-label": `${done} of ${jobs.length} jobs ended` }), ` ${done}/${jobs.length}`),
          h(
            "td",
            {},
            jobs.map((j) =>
              h(
                "div",
                { "data-job": j.job_id },
                id(j.job_id, `#/jobs/${encodeURIComponent(j.job_id)}`),
                " ",
                badge(j.status.status),
                TERMINAL.has(j.status.status) ? null : liveText(j.status),
              ),
            ),
          ),
        );
      }),
    ),
  );
}

// What a job on its agent is doing now: its stage and how far it is.
function liveText(status) {
  const parts = [status.stage, status.progress != null ? `${Math.round(status.progress * 100)}%` : null].filter(Boolean);
  return parts.length ? h("span", { class: "stage muted" }, ` ${parts.join(", ")}`) : null;
}

function heading(metric) {
  const unit = metric.unit ? ` (${metric.unit})` : "";
  const way = metric.higher_is_better === true ? ", higher is better" : metric.higher_is_better === false ? ", lower is better" : "";
  return `${metric.name}${unit}${way}`;
}

function hardwareText(hw) {
  const parts = [hw.cpu_model, hw.cores_logical ? `${hw.cores_logical} threads` : null, hw.memory_gb ? `${Math.round(hw.memory_gb * 10) / 10} GB` : null];
  for (const g of hw.gpus || []) parts.push(`${g.name || "GPU"}${g.memory_total_mb ? ` ${(g.memory_total_mb / 1024).toFixed(0)} GB` : ""}`);
  return parts.filter(Boolean).join(", ") || "unknown";
}

function comparisonTable(comparison) {
  return h(
    "table",
    { id: "comparison-table" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col" }, comparison.by), h("th", { scope: "col" }, "hardware"), h("th", { scope: "col" }, "jobs"), comparison.metrics.map((m) => h("th", { scope: "col", class: "num" }, heading(m)))),
    ),
    h(
      "tbody",
      {},
      comparison.rows.map((row) =>
        h(
          "tr",
          { "data-row": row.key },
          h("th", { scope: "row" }, row.label, row.label !== row.key ? h("div", { class: "sub" }, id(row.key)) : null),
          h("td", {}, hardwareText(row.hardware)),
          h("td", {}, `${row.job_ids.length} job(s)`, row.failed.length ? `, ${row.failed.length} failed` : "", row.pending.length ? `, ${row.pending.length} not ended` : ""),
          comparison.metrics.map((m) => {
            const cell = row.cells[m.name];
            if (!cell) return h("td", { class: "num none", "data-metric": m.name }, "-");
            return h(
              "td",
              { class: "num", "data-metric": m.name },
              h("span", { class: "mean" }, fmt(cell.mean)),
              cell.stddev != null ? [" ± ", h("span", { class: "stddev" }, fmt(cell.stddev))] : null,
              h("div", { class: "sub" }, "n=", h("span", { class: "n" }, cell.n), ", ", h("span", { class: "min" }, fmt(cell.min)), " to ", h("span", { class: "max" }, fmt(cell.max))),
              cell.ratio_to_best != null ? h("div", { class: "sub" }, "ratio to best ", h("span", { class: "ratio" }, fmt(cell.ratio_to_best))) : null,
            );
          }),
        ),
      ),
    ),
  );
}

async function drawCharts(container, comparison) {
  if (!comparison.metrics.length) {
    replace(container, h("p", { class: "muted" }, "No metric was measured: no job of the run completed."));
    return;
  }
  const Plotly = await loadPlotly();
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const ink = dark ? "#e6edf3" : "#1f2328";
  const grid = dark ? "#3d444d" : "#d1d9e0";
  const figures = comparison.metrics.map((metric) => {
    const figure = h("figure", { class: "chart", "data-metric": metric.name, "aria-label": `chart of ${heading(metric)}`, role: "img" });
    return [metric, figure];
  });
  replace(container, figures.map(([, f]) => f));
  for (const [metric, figure] of figures) {
    const measured = comparison.rows.map((r, i) => [i, r, r.cells[metric.name]]).filter(([, , c]) => c);
    const bar = {
      type: "bar",
      x: measured.map(([, r]) => r.label),
      y: measured.map(([, , c]) => c.mean),
      marker: { color: measured.map(([i]) => PALETTE[i % PALETTE.length]) },
      error_y: { type: "data", color: ink, symmetric: false, array: measured.map(([, , c]) => c.max - c.mean), arrayminus: measured.map(([, , c]) => c.mean - c.min) },
      customdata: measured.map(([, , c]) => [c.n, fmt(c.min), fmt(c.max), fmt(c.stddev) || "-"]),
      hovertemplate: "%{x}<br>mean %{y:.4g}<br>min %{customdata[1]}, max %{customdata[2]}<br>stddev %{customdata[3]}, n %{customdata[0]}<extra></extra>",
    };
    const layout = {
      title: { text: heading(metric) },
      yaxis: { title: { text: metric.unit || "" }, rangemode: "tozero", gridcolor: grid, zerolinecolor: grid },
      xaxis: { linecolor: grid },
      margin: { t: 48, b: 40, l: 60, r: 16 },
      height: 320,
      showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: ink },
    };
    await Plotly.newPlot(figure, [bar], layout, { displaylogo: false, responsive: true });
  }
}

export function runPage(main, _query, runId) {
  const enc = encodeURIComponent(runId);
  const head = h("div", {});
  const progress = h("div", { "aria-live": "polite" });
  const comparisonBox = h("section", { id: "comparison", "aria-labelledby": "comparison-title" });
  const error = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-run" }, "Cancel run");
  replace(
    main,
    h("h1", {}, "Run ", id(runId)),
    head,
    h("div", { class: "actions" }, cancel, workflowLink(runId)),
    error,
    h("h2", {}, "Progress by agent"),
    progress,
    comparisonBox,
  );
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api(`/api/v1/runs/${enc}`, { method: "DELETE" });
    } catch (err) {
      error.textContent = messageOf(err);
      cancel.disabled = false;
    }
  });

  const names = agentNames();
  let shown = false;
  let stop = () => {};
  stop = every(
    1500,
    async () => {
      const run = await api(`/api/v1/runs/${enc}?live=true`);
      update(
        head,
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "status"),
          h("dd", { id: "run-status" }, badge(run.status)),
          h("dt", {}, "experiment"),
          h("dd", {}, id(run.experiment_id, `#/experiments/${encodeURIComponent(run.experiment_id)}`)),
          h("dt", {}, "jobs per agent"),
          h("dd", {}, run.repeats),
          h("dt", {}, "created"),
          h("dd", {}, time(run.created_time)),
          h("dt", {}, "ended"),
          h("dd", {}, time(run.ended_time)),
        ),
      );
      update(progress, progressView(run, await names));
      cancel.disabled = run.status !== "running";
      if (run.status !== "running" && !shown) {
        shown = true;
        stop();
        const comparison = await api(`/api/v1/runs/${enc}/comparison`);
        const charts = h("div", { class: "charts", id: "charts" });
        const failed = comparison.rows.flatMap((r) => r.failed.map((f) => h("li", {}, id(f.job_id, `#/jobs/${encodeURIComponent(f.job_id)}`), ` on ${r.label}: `, h("strong", {}, f.status), `: ${f.error}`)));
        replace(
          comparisonBox,
          h("h2", { id: "comparison-title" }, "Comparison"),
          h(
            "div",
            { class: "actions" },
            h("a", { class: "button", href: `/api/v1/runs/${enc}/report?download=true`, download: `${runId}.html` }, "Download report (HTML)"),
            h("a", { class: "button", href: `/api/v1/runs/${enc}/report?format=csv&download=true`, download: `${runId}.csv` }, "Download table (CSV)"),
            h("a", { href: `/api/v1/runs/${enc}/report`, target: "_blank", rel: "noopener" }, "Open the report"),
          ),
          h("p", { class: "sub" }, "Bars are the mean over every measured run; whiskers span min to max; ± is the standard deviation."),
          charts,
          comparisonTable(comparison),
          failed.length ? h("div", { class: "failed" }, h("h3", {}, "Failed jobs"), h("ul", {}, failed)) : null,
        );
        await drawCharts(charts, comparison);
      }
    },
    error,
  );
  return () => stop();
}
