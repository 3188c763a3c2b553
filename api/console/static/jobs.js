// Jobs: a live list filtered by agent, experiment and status; one job's page, followed live.

import { api, messageOf } from "./api.js";
import { TERMINAL, agentLabel, badge, every, facts, fmt, h, id, replace, time, update, workflowLink } from "./ui.js";

const STATUSES = ["queued", "assigned", "running", "completed", "failed", "cancelled", "timeout"];

function progressOf(status) {
  if (status.progress === null || status.progress === undefined) return status.stage ? h("span", { class: "sub" }, status.stage) : null;
  const percent = Math.round(status.progress * 100);
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: 100, value: percent, "aria-label": `${percent}% done` }),
    ` ${percent}%`,
    status.stage ? h("span", { class: "sub" }, ` ${status.stage}`) : null,
  );
}

export function jobsPage(main, query) {
  const agent = h("input", { id: "filter-agent", list: "known-agents", value: query.get("agent") || "", size: 24 });
  const experiment = h("input", { id: "filter-experiment", list: "known-experiments", value: query.get("experiment") || "", size: 24 });
  const knownAgents = h("datalist", { id: "known-agents" });
  const knownExperiments = h("datalist", { id: "known-experiments" });
  const names = {};
  Promise.all([api("/api/v1/agents/"), api("/api/v1/experiments/")])
    .then(([a, e]) => {
      for (const x of a.agents) names[x.agent_id] = x.agent_name || x.agent_id;
      replace(knownAgents, a.agents.map((x) => h("option", { value: x.agent_id }, x.agent_name || x.agent_id)));
      replace(knownExperiments, e.experiments.map((x) => h("option", { value: x.id }, x.name)));
    })
    .catch(() => {}); // suggestions only: the filters work without them
  const status = h(
    "select",
    { id: "filter-status" },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: query.get("status") === s }, s)),
  );
  const filters = h(
    "form",
    { class: "filters", id: "job-filters" },
    h("div", {}, h("label", { for: "filter-agent" }, "Agent id"), agent),
    h("div", {}, h("label", { for: "filter-experiment" }, "Experiment id"), experiment),
    h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
    h("button", { type: "submit" }, "Filter"),
    knownAgents,
    knownExperiments,
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (agent.value.trim()) params.set("agent", agent.value.trim());
    if (experiment.value.trim()) params.set("experiment", experiment.value.trim());
    if (status.value) params.set("status", status.value);
    location.hash = `#/jobs${params.size ? `?${params}` : ""}`;
  });
  status.addEventListener("change", () => filters.requestSubmit());
  const error = h("p", { class: "error", role: "alert" });
  const table = h("div", {});
  replace(main, h("h1", {}, "Jobs"), filters, error, table);

  const params = new URLSearchParams({ limit: "200" });
  if (query.get("agent")) params.set("agent_id", query.get("agent"));
  if (query.get("experiment")) params.set("experiment_id", query.get("experiment"));
  if (query.get("status")) params.set("status", query.get("status"));
  return every(
    2000,
    async () => {
      const { jobs } = await api(`/api/v1/jobs?${params}`);
      const all = Object.values(jobs).flat();
      all.sort((a, b) => (a.created_time < b.created_time ? 1 : -1));
      if (!all.length) {
        update(table, h("p", { class: "muted" }, "No job matches."));
        return;
      }
      update(
        table,
        h(
          "table",
          { id: "jobs-table" },
          h("thead", {}, h("tr", {}, ["job", "status", "progress", "experiment", "agent", "submitted", "since"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            all.map((j) =>
              h(
                "tr",
                { "data-job": j.job_id },
                h("td", {}, id(j.job_id, `#/jobs/${encodeURIComponent(j.job_id)}`)),
                h("td", {}, badge(j.status.status)),
                h("td", {}, TERMINAL.has(j.status.status) ? null : progressOf(j.status)),
                h("td", {}, id(j.experiment_id, `#/experiments/${encodeURIComponent(j.experiment_id)}`)),
                h("td", {}, agentLabel(j.agent_id, names)),
                h("td", {}, time(j.created_time)),
                h("td", {}, time(j.status.timestamp)),
              ),
            ),
          ),
        ),
      );
    },
    error,
  );
}

// The timeline's steps, each with the time it was reached where known.
// `seen`: the first time of each status, as stored (/steps) or as watched live.
function timelineOf(job, seen, result) {
  const current = job.status.status;
  const steps = [
    ["queued", seen.queued || job.created_time],
    ["assigned", seen.assigned],
    ["running", seen.running || (result && result.started_at)],
  ];
  const end = TERMINAL.has(current) ? [current, seen[current] || job.status.timestamp] : ["ended", null];
  const order = ["queued", "assigned", "running"];
  const reachedIndex = TERMINAL.has(current) ? 3 : order.indexOf(current);
  return h(
    "ol",
    { class: "timeline", id: "timeline" },
    steps.map(([name, at], i) =>
      h(
        "li",
        { class: i <= reachedIndex ? "reached" : "", "data-step": name },
        h("div", {}, name),
        h("div", { class: "sub" }, at ? time(at) : i <= reachedIndex ? "not recorded" : "not yet"),
      ),
    ),
    h(
      "li",
      { class: TERMINAL.has(current) ? `reached end-${current}` : "", "data-step": "end" },
      h("div", {}, end[0]),
      h("div", { class: "sub" }, end[1] ? time(end[1]) : "not yet"),
    ),
  );
}

function resultView(result) {
  const parts = [];
  const metrics = result.metrics || {};
  const numbers = Object.entries(metrics).filter(([, v]) => typeof v === "number");
  if (numbers.length) {
    parts.push(
      h("h3", {}, "Metrics"),
      h(
        "table",
        { id: "metrics", class: "compact" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "metric"), h("th", { scope: "col", class: "num" }, "value"))),
        h("tbody", {}, numbers.map(([k, v]) => h("tr", { "data-metric": k }, h("td", {}, k), h("td", { class: "num" }, fmt(v))))),
      ),
    );
  }
  const raw = metrics.repeats && metrics.repeats.raw;
  if (raw && typeof raw === "object") {
    const runs = Math.max(0, ...Object.values(raw).map((v) => (Array.isArray(v) ? v.length : 0)));
    parts.push(
      h("h3", {}, "Repeated runs"),
      h(
        "table",
        { id: "repeats", class: "compact" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "metric"), Array.from({ length: runs }, (_, i) => h("th", { scope: "col", class: "num" }, `run ${i + 1}`)))),
        h("tbody", {}, Object.entries(raw).map(([k, values]) => h("tr", {}, h("td", {}, k), (values || []).map((v) => h("td", { class: "num" }, fmt(v)))))),
      ),
    );
  }
  const hw = result.hardware_info || {};
  if (Object.keys(hw).length) {
    const cpu = hw.cpu || {};
    const gpus = Array.isArray(hw.gpus) ? hw.gpus : [];
    const memory = hw.memory_total_gb ?? (hw.system || {}).total_memory_gb;
    parts.push(
      h("h3", {}, "Hardware"),
      facts([
        ["CPU", `${cpu.model || "unknown"}${cpu.cores_logical ? `, ${cpu.cores_logical} threads` : ""}`],
        ["memory", memory ? `${Math.round(memory * 10) / 10} GB` : "unknown"],
        ["GPU", gpus.length ? gpus.map((g) => `${g.name || "GPU"}${g.memory_total_mb ? ` ${(g.memory_total_mb / 1024).toFixed(0)} GB` : ""}`).join(", ") : "none"],
      ]),
      h("details", {}, h("summary", {}, "Everything the agent reported"), h("pre", { class: "log" }, JSON.stringify(hw, null, 2))),
    );
  }
  if (result.error) {
    parts.push(
      h("h3", {}, "Error"),
      h("p", { class: "error job-error" }, result.error_type ? `${result.error_type}: ` : "", result.error),
      result.traceback ? h("details", {}, h("summary", {}, "Traceback"), h("pre", { class: "log" }, result.traceback)) : null,
    );
  }
  const rest = Object.fromEntries(Object.entries(metrics).filter(([k, v]) => typeof v !== "number" && k !== "repeats"));
  if (Object.keys(rest).length) {
    parts.push(h("details", {}, h("summary", {}, "All metrics"), h("pre", { class: "log" }, JSON.stringify(rest, null, 2))));
  }
  parts.push(
    h("p", { class: "sub" }, "Duration: ", result.duration_seconds != null ? `${fmt(result.duration_seconds)} s` : "—", " · started ", time(result.started_at), " · ended ", time(result.completed_at)),
  );
  return parts;
}

export function jobPage(main, _query, jobId) {
  const heading = h("h1", {}, "Job ", id(jobId));
  const head = h("div", {});
  const timeline = h("div", {});
  const live = h("div", { "aria-live": "polite" });
  const log = h("pre", { class: "log", id: "log", tabindex: 0 }, "");
  const results = h("div", { id: "results" });
  const error = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-job" }, "Cancel job");
  replace(
    main,
    heading,
    head,
    h("div", { class: "actions" }, cancel, workflowLink(jobId)),
    error,
    h("h2", {}, "Timeline"),
    timeline,
    live,
    h("h2", {}, "Log"),
    log,
    h("h2", {}, "Results"),
    results,
  );

  const seen = {};
  let job = null;
  let result = null;
  let source = null;
  let stopped = false;

  function show() {
    const s = job.status;
    replace(
      head,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "status"),
        h("dd", { id: "job-status" }, badge(s.status), s.message ? h("span", { class: "sub" }, ` ${s.message}`) : null),
        h("dt", {}, "experiment"),
        h("dd", {}, id(job.experiment_id, `#/experiments/${encodeURIComponent(job.experiment_id)}`)),
        h("dt", {}, "agent"),
        h("dd", {}, id(job.agent_id, `#/jobs?agent=${encodeURIComponent(job.agent_id)}`)),
      ),
    );
    replace(timeline, timelineOf(job, seen, result));
    replace(live, TERMINAL.has(s.status) ? null : h("p", { id: "live-progress" }, progressOf(s) || h("span", { class: "muted" }, "no progress reported")));
    cancel.disabled = TERMINAL.has(s.status);
  }

  function record(next) {
    const changed = !job || job.status.status !== next.status.status;
    job = next;
    const s = next.status.status;
    if ((s === "assigned" || s === "running") && !seen[s]) seen[s] = next.status.timestamp;
    show();
    if (changed) readSteps();
  }

  async function readSteps() {
    try {
      const { steps } = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/steps`);
      for (const step of steps) seen[step.status] = step.at;
      if (job) show();
    } catch {
      // the times watched live stand in
    }
  }

  async function ended() {
    const all = await api(`/api/v1/results?experiment_id=${encodeURIComponent(job.experiment_id)}`);
    result = all.results.find((r) => r.job_id === jobId) || null;
    show();
    replace(results, result ? resultView(result) : h("p", { class: "muted" }, job.status.message || "This job left no results."));
  }

  async function readLog() {
    let offset = 0;
    for (;;) {
      const part = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/logs?offset=${offset}`);
      log.textContent += part.text;
      if (!part.text || part.complete || stopped) return;
      offset = part.next_offset;
    }
  }

  cancel.addEventListener("click", async () => {
    error.textContent = "";
    cancel.disabled = true;
    try {
      await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });
    } catch (err) {
      error.textContent = messageOf(err);
      cancel.disabled = false;
    }
  });

  api(`/api/v1/jobs/${encodeURIComponent(jobId)}`)
    .then(async (first) => {
      record(first);
      if (TERMINAL.has(first.status.status)) {
        await ended();
        await readLog();
        if (!log.textContent) log.textContent = "(no log)";
        return;
      }
      replace(results, h("p", { class: "muted" }, "Results appear when the job ends."));
      source = new EventSource(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`);
      source.addEventListener("status", (e) => record(JSON.parse(e.data)));
      source.addEventListener("log", (e) => {
        log.textContent += JSON.parse(e.data).text;
        log.scrollTop = log.scrollHeight;
      });
      source.addEventListener("end", async (e) => {
        source.close();
        record(JSON.parse(e.data));
        if (!log.textContent) log.textContent = "(no log)";
        try {
          await ended();
        } catch (err) {
          error.textContent = messageOf(err);
        }
      });
    })
    .catch((err) => {
      error.textContent = messageOf(err);
      cancel.disabled = true;
    });

  return () => {
    stopped = true;
    if (source) source.close();
  };
}
