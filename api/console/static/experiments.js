// Experiments: the list, one created from pasted or uploaded YAML or JSON, and one's page,
// which starts a job or a run of it.

import { ApiError, api, messageOf } from "./api.js";
import { h, id, replace, time } from "./ui.js";

const EXAMPLE = `id: matmul-quick
name: Quick matrix multiply
model: none
task:
  name: matmul
  type: compute_benchmark
  params:
    matrix_sizes: [64, 128]
    precision_types: [fp32]
    runs: 3
`;

export function experimentsPage(main) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  replace(
    main,
    h("h1", {}, "Experiments"),
    h("div", { class: "actions" }, h("a", { class: "button", href: "#/experiments/new" }, "New experiment")),
    list,
  );
  api("/api/v1/experiments/")
    .then(({ experiments }) => {
      if (!experiments.length) {
        replace(list, h("p", { class: "muted" }, "No experiment yet."));
        return;
      }
      replace(
        list,
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["experiment", "name", "task", "model", "created"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            [...experiments].reverse().map((e) =>
              h(
                "tr",
                { "data-experiment": e.id },
                h("td", {}, id(e.id, `#/experiments/${encodeURIComponent(e.id)}`)),
                h("td", {}, e.name),
                h("td", {}, `${e.task.type} (${e.task.name})`),
                h("td", {}, e.model),
                h("td", {}, time(e.created_at)),
              ),
            ),
          ),
        ),
      );
    })
    .catch((err) => replace(list, h("p", { class: "error", role: "alert" }, messageOf(err))));
}

// Each error next to the field it names: its dotted path and the line that holds it.
function showErrors(box, errors, textarea) {
  replace(
    box,
    errors.map((e) => {
      const line = e.line
        ? h("button", { type: "button", class: "link", onclick: () => selectLine(textarea, e.line) }, `line ${e.line}`)
        : null;
      return h(
        "li",
        { "data-field": e.field || "" },
        e.field ? h("span", { class: "field" }, e.field) : h("span", { class: "field" }, "document"),
        line ? [" (", line, ")"] : null,
        ": ",
        h("span", { class: "message" }, e.message),
      );
    }),
  );
}

function selectLine(textarea, line) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

// The nearest field of `path` (or an enclosing one) that has a line in the document.
function lineOf(lines, path) {
  const parts = path.split(".");
  while (parts.length) {
    const line = lines[parts.join(".")];
    if (line) return line;
    parts.pop();
  }
  return null;
}

export function newExperimentPage(main) {
  const textarea = h("textarea", { id: "document", spellcheck: "false", "aria-describedby": "document-help" });
  textarea.value = EXAMPLE;
  const file = h("input", { id: "document-file", type: "file", accept: ".yaml,.yml,.json,application/json,text/yaml" });
  const errors = h("ul", { class: "field-errors", id: "document-errors", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create");
  file.addEventListener("change", async () => {
    if (file.files.length) textarea.value = await file.files[0].text();
  });
  const form = h(
    "form",
    { id: "experiment-form" },
    h("label", { for: "document" }, "Experiment (YAML or JSON)"),
    h("p", { id: "document-help", class: "sub" }, "Paste it here or choose a file. Each error is shown with the field and line it concerns."),
    textarea,
    h("div", { class: "actions" }, h("label", { for: "document-file" }, "Upload a file"), file),
    errors,
    h("div", { class: "actions" }, submit, h("a", { href: "#/experiments" }, "Back to experiments")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(errors);
    submit.disabled = true;
    try {
      const checked = await api("/console/experiment-document", { method: "POST", body: { text: textarea.value } });
      if (checked.errors.length) {
        showErrors(errors, checked.errors, textarea);
        return;
      }
      let created;
      try {
        created = await api("/api/v1/experiments/", { method: "POST", body: { experiment_spec: checked.spec } });
      } catch (err) {
        if (!(err instanceof ApiError) || !Array.isArray(err.detail)) {
          const field = err instanceof ApiError && err.status === 409 ? "id" : "";
          showErrors(errors, [{ field, line: field ? checked.lines[field] : null, message: messageOf(err) }], textarea);
          return;
        }
        const found = err.detail.map((e) => {
          const field = (e.loc || []).slice(2).join(".");
          return { field, line: lineOf(checked.lines, field), message: e.msg };
        });
        showErrors(errors, found, textarea);
        return;
      }
      location.hash = `#/experiments/${encodeURIComponent(created.experiment_id)}`;
    } catch (err) {
      showErrors(errors, [{ field: "", line: null, message: messageOf(err) }], textarea);
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h("h1", {}, "New experiment"), form);
  textarea.focus();
}

export function experimentPage(main, _query, experimentId) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  replace(main, h("h1", {}, "Experiment ", id(experimentId)), body);
  Promise.all([api(`/api/v1/experiments/${encodeURIComponent(experimentId)}`), api("/api/v1/agents/")])
    .then(([{ experiment }, { agents }]) => replace(body, ...experimentView(experiment, agents)))
    .catch((err) => replace(body, h("p", { class: "error", role: "alert" }, messageOf(err))));
}

function experimentView(spec, agents) {
  const agentName = (a) => (a.agent_name && a.agent_name !== a.agent_id ? `${a.agent_name} (${a.agent_id})` : a.agent_id);
  const jobError = h("p", { class: "error", role: "alert" });
  const agentSelect = h(
    "select",
    { id: "job-agent" },
    h("option", { value: "" }, "any fitting agent"),
    agents.map((a) => h("option", { value: a.agent_id }, agentName(a))),
  );
  const jobForm = h(
    "form",
    { class: "inline", id: "job-form" },
    h("div", {}, h("label", { for: "job-agent" }, "Agent"), agentSelect),
    h("button", { type: "submit", class: "primary" }, "Start job"),
  );
  jobForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    jobError.textContent = "";
    const request = { experiment_id: spec.id };
    if (agentSelect.value) request.agent_id = agentSelect.value;
    try {
      const job = await api("/api/v1/jobs", { method: "POST", body: request });
      location.hash = `#/jobs/${encodeURIComponent(job.job_id)}`;
    } catch (err) {
      jobError.textContent = messageOf(err);
    }
  });

  const runError = h("p", { class: "error", role: "alert" });
  const boxes = agents.map((a) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "run-agent", value: a.agent_id }), " ", agentName(a)),
  );
  const repeats = h("input", { id: "run-repeats", type: "number", min: 1, max: 20, value: 1, size: 4 });
  const runForm = h(
    "form",
    { id: "run-form" },
    h("fieldset", { class: "panel" }, h("legend", {}, "Agents (none ticked: every fitting agent)"), boxes.length ? boxes.map((b) => h("div", {}, b)) : h("p", { class: "muted" }, "No agent is registered.")),
    h("div", { class: "inline" }, h("div", {}, h("label", { for: "run-repeats" }, "Jobs per agent"), repeats), h("button", { type: "submit", class: "primary" }, "Start run")),
  );
  runForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    runError.textContent = "";
    const chosen = [...runForm.querySelectorAll("input[name=run-agent]:checked")].map((b) => b.value);
    const request = { experiment_id: spec.id, repeats: Number(repeats.value) || 1 };
    if (chosen.length) request.agents = chosen;
    try {
      const run = await api("/api/v1/runs", { method: "POST", body: request });
      location.hash = `#/runs/${encodeURIComponent(run.run_id)}`;
    } catch (err) {
      runError.textContent = messageOf(err);
    }
  });

  const shown = { ...spec };
  delete shown.created_at;
  delete shown.updated_at;
  return [
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "name"),
      h("dd", {}, spec.name),
      h("dt", {}, "task"),
      h("dd", {}, `${spec.task.type} (${spec.task.name})`),
      h("dt", {}, "created"),
      h("dd", {}, time(spec.created_at)),
      h("dt", {}, "jobs"),
      h("dd", {}, h("a", { href: `#/jobs?experiment=${encodeURIComponent(spec.id)}` }, "this experiment's jobs"), " · ", h("a", { href: `#/runs?experiment=${encodeURIComponent(spec.id)}` }, "runs")),
    ),
    h("h2", {}, "Start a job"),
    jobForm,
    jobError,
    h("h2", {}, "Start a run across agents"),
    runForm,
    runError,
    h("h2", {}, "Document"),
    h("pre", { class: "log" }, JSON.stringify(shown, null, 2)),
  ];
}
