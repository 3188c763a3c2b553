// The console: a hash router over the pages, and the API key prompt when the server has one.

import { api, whenUnauthorized } from "./api.js";
import { agentsPage } from "./agents.js";
import { experimentPage, experimentsPage, newExperimentPage } from "./experiments.js";
import { jobPage, jobsPage } from "./jobs.js";
import { runPage, runsPage } from "./runs.js";
import { config, h, replace } from "./ui.js";

const main = document.getElementById("main");
let stopPage = () => {};

const ROUTES = [
  [/^\/agents$/, agentsPage],
  [/^\/experiments$/, experimentsPage],
  [/^\/experiments\/new$/, newExperimentPage],
  [/^\/experiments\/([^/]+)$/, experimentPage],
  [/^\/jobs$/, jobsPage],
  [/^\/jobs\/([^/]+)$/, jobPage],
  [/^\/runs$/, runsPage],
  [/^\/runs\/([^/]+)$/, runPage],
];

function route() {
  const hash = location.hash.replace(/^#/, "") || "/agents";
  const [path, query = ""] = hash.split("?");
  stopPage();
  stopPage = () => {};
  const section = path.split("/")[1];
  for (const link of document.querySelectorAll(".top nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, page] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      const params = match.slice(1).map(decodeURIComponent);
      replace(main);
      stopPage = page(main, new URLSearchParams(query), ...params) || (() => {});
      return;
    }
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/agents" }, "Agents")));
}

function askForKey() {
  const dialog = document.getElementById("key-dialog");
  if (!dialog.open) dialog.showModal();
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("key-input");
  const error = document.getElementById("key-error");
  const response = await fetch("/console/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Ruckus-Console": "1" },
    body: JSON.stringify({ key: input.value }),
  });
  if (response.status === 204) {
    input.value = "";
    error.textContent = "";
    document.getElementById("key-dialog").close();
    document.getElementById("sign-out").hidden = false;
    route();
  } else {
    const detail = (await response.json()).detail;
    error.textContent = typeof detail === "string" ? detail : "that key was refused";
    input.select();
  }
}

async function signOut() {
  await api("/console/session", { method: "DELETE" });
  document.getElementById("sign-out").hidden = true;
  stopPage();
  replace(main);
  askForKey();
}

async function start() {
  const settings = await api("/console/config");
  Object.assign(config, settings);
  document.getElementById("key-form").addEventListener("submit", signIn);
  document.getElementById("key-dialog").addEventListener("cancel", (e) => e.preventDefault());
  document.getElementById("sign-out").addEventListener("click", signOut);
  whenUnauthorized(askForKey);
  window.addEventListener("hashchange", route);
  if (settings.key_required && !settings.signed_in) {
    replace(main);
    askForKey();
    return;
  }
  document.getElementById("sign-out").hidden = !settings.key_required;
  route();
}

start();
