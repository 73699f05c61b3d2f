// The UI's shell: hash routes to pages, the namespace picker, the sign-in dialog and the
// confirmation dialog. A page is `render(view, params, ui)` returning a function that stops
// whatever it runs (auto-refresh timers) when the user leaves it.

import {call, setToken, token} from "./api.js";
import {clear, el, errorBox} from "./dom.js";
import * as cluster from "./cluster_page.js";
import * as namespaces from "./namespaces_page.js";
import * as schedules from "./schedules_page.js";
import * as workflow from "./workflow_page.js";
import * as workflows from "./workflows_page.js";

const NAMESPACE_KEY = "raftflow.namespace";
const view = document.getElementById("view");
let stopPage = () => {};

// [pattern, page]: a pattern's groups are the page's path parameters, decoded.
const ROUTES = [
  [/^\/ns\/([^/]+)\/workflows\/([^/]+)$/, workflow, ["namespace", "workflowId"]],
  [/^\/ns\/([^/]+)\/workflows$/, workflows, ["namespace"]],
  [/^\/ns\/([^/]+)\/schedules\/([^/]+)$/, schedules, ["namespace", "scheduleId"]],
  [/^\/ns\/([^/]+)\/schedules$/, schedules, ["namespace"]],
  [/^\/namespaces$/, namespaces, []],
  [/^\/cluster$/, cluster, []],
];

export function currentNamespace() {
  return sessionStorage.getItem(NAMESPACE_KEY) || "default";
}

/** `#/ns/a%2Fb/workflows?x=1` for ("ns", "a/b", "workflows") and {x: 1}. */
export function href(segments, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return `#/${segments.map(encodeURIComponent).join("/")}${text ? `?${text}` : ""}`;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?", 2);
  return {path: pathPart, query: Object.fromEntries(new URLSearchParams(queryPart))};
}

const ui = {
  href,
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  confirm: confirmDialog,
  currentNamespace,
};

function route() {
  stopPage();
  stopPage = () => {};
  const {path, query} = parseHash();
  if (path === "/" || path === "") {
    location.replace(href(["ns", currentNamespace(), "workflows"]));
    return;
  }
  for (const [pattern, page, names] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = {...query};
    names.forEach((name, i) => { params[name] = decodeURIComponent(match[i + 1]); });
    if (params.namespace) selectNamespace(params.namespace);
    markNav(page);
    clear(view);
    try {
      stopPage = page.render(view, params, ui) || (() => {});
    } catch (error) {
      view.append(errorBox(error));
    }
    return;
  }
  clear(view).append(el("h2", {}, "Not found"), el("p", {}, `No page at ${path}`));
}

function markNav(page) {
  const active = {[workflows.name]: "nav-workflows", [workflow.name]: "nav-workflows",
    [schedules.name]: "nav-schedules", [namespaces.name]: "nav-namespaces",
    [cluster.name]: "nav-cluster"}[page.name];
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.id === active);
  }
}

function selectNamespace(namespace) {
  sessionStorage.setItem(NAMESPACE_KEY, namespace);
  const select = document.getElementById("namespace-select");
  if (![...select.options].some((o) => o.value === namespace)) {
    select.append(el("option", {value: namespace}, namespace));
  }
  select.value = namespace;
  document.getElementById("nav-workflows").setAttribute("href",
    href(["ns", namespace, "workflows"]));
  document.getElementById("nav-schedules").setAttribute("href",
    href(["ns", namespace, "schedules"]));
}

async function loadNamespaces() {
  const select = document.getElementById("namespace-select");
  try {
    const answer = await call("/api/v1/namespaces");
    const names = answer.namespaces.map((n) => n.name);
    if (!names.includes(currentNamespace())) names.push(currentNamespace());
    select.replaceChildren(...names.map((n) => el("option", {value: n}, n)));
    select.value = currentNamespace();
  } catch {
    // Signed out, or a node going away: the picker keeps what it has; pages show errors.
  }
}

/** Ask before an action; resolves to the fields' values, or null when the user cancels. */
function confirmDialog({title, text, fields = [], action = "Confirm"}) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  const inputs = {};
  document.getElementById("confirm-fields").replaceChildren(...fields.map((field) => {
    const input = field.multiline
      ? el("textarea", {name: field.name, rows: 4, cols: 48})
      : el("input", {name: field.name, size: 48, placeholder: field.placeholder || ""});
    input.value = field.value || "";
    input.id = `confirm-field-${field.name}`;
    inputs[field.name] = input;
    return el("label", {class: "field"}, field.label, input);
  }));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") { resolve(null); return; }
      resolve(Object.fromEntries(Object.entries(inputs).map(([n, i]) => [n, i.value])));
    }, {once: true});
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function askForToken(message) {
  const dialog = document.getElementById("token-dialog");
  if (dialog.open) return;
  document.getElementById("token-error").textContent = token() ? message : "";
  document.getElementById("token-input").value = "";
  dialog.showModal();
}

function start() {
  const tokenDialog = document.getElementById("token-dialog");
  tokenDialog.addEventListener("close", () => {
    const typed = document.getElementById("token-input").value.trim();
    if (tokenDialog.returnValue === "ok" && typed) {
      setToken(typed);
      document.getElementById("token-button").hidden = false;
      loadNamespaces();
      route();
    }
  });
  window.addEventListener("raftflow:unauthenticated", (event) => askForToken(event.detail));
  const signOut = document.getElementById("token-button");
  signOut.hidden = !token();
  signOut.addEventListener("click", () => {
    setToken("");
    signOut.hidden = true;
    route();
  });
  document.getElementById("namespace-select").addEventListener("change", (event) => {
    ui.go(href(["ns", event.target.value, "workflows"]));
  });
  window.addEventListener("hashchange", route);
  loadNamespaces();
  route();
}

start();
