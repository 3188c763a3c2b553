// Small DOM helpers: elements, times in the viewer's zone, status badges, ids shown whole.

import { api } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Replaces the contents only when they differ: a refresh that changes nothing keeps the
// keyboard focus and the selection where the viewer left them.
export function update(el, ...children) {
  const next = h("div", {}, ...children);
  if (el.innerHTML !== next.innerHTML) el.replaceChildren(...next.childNodes);
  return el;
}

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function badge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status }, status);
}

export function id(value, href) {
  return href ? h("a", { class: "id mono", href }, value) : h("code", { class: "id" }, value);
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  let text = value.toPrecision(4);
  if (text.includes(".") && !text.includes("e")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return text;
}

// Repeats `step` every `ms` until the returned stop function is called; errors are shown in
// `errorEl` and the polling goes on (the server may be back shortly).
export function every(ms, step, errorEl) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await step();
      if (errorEl) errorEl.textContent = "";
    } catch (err) {
      if (errorEl) errorEl.textContent = err.message || String(err);
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export const TERMINAL = new Set(["completed", "failed", "cancelled", "timeout"]);

// What GET /console/config answered: filled in before any page is shown.
export const config = { temporal_ui_url: null, temporal_namespace: "default" };

export function workflowLink(workflowId) {
  if (!config.temporal_ui_url) return null;
  const ns = encodeURIComponent(config.temporal_namespace);
  const href = `${config.temporal_ui_url}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}`;
  return h("a", { href, target: "_blank", rel: "noopener", class: "workflow-link" }, "Workflow in the Temporal web UI");
}

// An agent as people know it: its name, with its id whole beneath when they differ.
export function agentLabel(agentId, names) {
  const name = names[agentId];
  if (!name || name === agentId) return id(agentId);
  return h("span", { class: "agent-label" }, name, h("div", { class: "sub" }, id(agentId)));
}

// Agent names by id, for labels; empty when the list cannot be read (ids then stand alone).
export async function agentNames() {
  try {
    const { agents } = await api("/api/v1/agents/");
    return Object.fromEntries(agents.map((a) => [a.agent_id, a.agent_name || a.agent_id]));
  } catch {
    return {};
  }
}
