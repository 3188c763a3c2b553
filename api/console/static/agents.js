// Agents: status (with the reason when unavailable), hardware, labels, current job, queue depth.

import { api, messageOf } from "./api.js";
import { badge, every, h, id, replace, time, update } from "./ui.js";

function hardware(info) {
  const sys = info.system_info || {};
  const cpu = sys.cpu || {};
  const gpus = Array.isArray(sys.gpus) ? sys.gpus : [];
  const cores = cpu.cores_logical ? `, ${cpu.cores_logical} threads` : "";
  const memory = sys.system && sys.system.total_memory_gb ? `, ${Math.round(sys.system.total_memory_gb * 10) / 10} GB RAM` : "";
  return h(
    "div",
    { class: "hardware" },
    h("div", { class: "cpu" }, `${cpu.model || "CPU unknown"}${cores}${memory}`),
    gpus.length
      ? gpus.map((g) =>
          h("div", { class: "gpu" }, `${g.name || "GPU"}${g.memory_total_mb ? `, ${(g.memory_total_mb / 1024).toFixed(0)} GB` : ""}`),
        )
      : h("div", { class: "gpu muted" }, "no GPU"),
  );
}

function labels(info) {
  const entries = Object.entries(info.labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "no labels");
  return h("span", { class: "labels" }, entries.map(([k, v]) => h("span", { class: "badge" }, `${k}=${v}`)));
}

export function agentsPage(main) {
  const error = h("p", { class: "error", role: "alert" });
  const cards = h("div", { class: "agent-cards", "aria-live": "polite" });
  const formError = h("p", { class: "error", role: "alert" });
  const url = h("input", { id: "agent-url", type: "url", required: true, placeholder: "http://127.0.0.1:8081", size: 32 });
  const form = h(
    "form",
    { class: "inline", id: "register-form" },
    h("div", {}, h("label", { for: "agent-url" }, "Agent URL"), url),
    h("button", { type: "submit", class: "primary" }, "Register"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    try {
      await api("/api/v1/agents/register", { method: "POST", body: { agent_url: url.value.trim() } });
      url.value = "";
      await refresh();
    } catch (err) {
      formError.textContent = messageOf(err);
    }
  });
  replace(main, h("h1", {}, "Agents"), form, formError, error, cards);

  async function unregister(agentId) {
    if (!confirm(`Unregister agent ${agentId}? Its queued and running jobs are cancelled.`)) return;
    try {
      await api("/api/v1/agents/unregister", { method: "POST", body: { agent_id: agentId } });
      await refresh();
    } catch (err) {
      error.textContent = messageOf(err);
    }
  }

  async function refresh() {
    const [list, statuses, queued] = await Promise.all([
      api("/api/v1/agents/"),
      api("/api/v1/agents/status"),
      api("/api/v1/jobs?status=queued&limit=1000"),
    ]);
    const byId = Object.fromEntries(statuses.agents.map((s) => [s.agent_id, s]));
    if (!list.agents.length) {
      update(cards, h("p", { class: "muted" }, "No agent is registered: register one by its URL above."));
      return;
    }
    update(
      cards,
      list.agents.map((info) => {
        const status = byId[info.agent_id] || { status: info.status };
        const depth = (queued.jobs[info.agent_id] || []).length;
        const current = status.current_job_id || (status.running_jobs || [])[0];
        return h(
          "article",
          { class: "card agent", "data-agent": info.agent_id },
          h("h2", {}, info.agent_name || info.agent_id),
          h("div", { class: "sub" }, id(info.agent_id)),
          h(
            "dl",
            { class: "facts" },
            h("dt", {}, "status"),
            h("dd", {}, badge(status.status), status.reason ? h("div", { class: "reason sub" }, status.reason) : null),
            h("dt", {}, "hardware"),
            h("dd", {}, hardware(info)),
            h("dt", {}, "labels"),
            h("dd", {}, labels(info)),
            h("dt", {}, "running"),
            h("dd", { class: "current" }, current ? id(current, `#/jobs/${encodeURIComponent(current)}`) : h("span", { class: "muted" }, "nothing")),
            h("dt", {}, "queued"),
            h("dd", { class: "queue-depth" }, depth ? h("a", { href: `#/jobs?agent=${encodeURIComponent(info.agent_id)}&status=queued` }, `${depth} job(s)`) : "0"),
            h("dt", {}, "URL"),
            h("dd", {}, id(info.agent_url)),
            h("dt", {}, "registered"),
            h("dd", {}, time(info.registered_at)),
          ),
          h(
            "div",
            { class: "actions" },
            h("a", { href: `#/jobs?agent=${encodeURIComponent(info.agent_id)}`, "aria-label": `Jobs of ${info.agent_name || info.agent_id}` }, "Jobs"),
            h("button", { type: "button", class: "danger", "aria-label": `Unregister ${info.agent_name || info.agent_id}`, onclick: () => unregister(info.agent_id) }, "Unregister"),
          ),
        );
      }),
    );
  }

  return every(3000, refresh, error);
}
