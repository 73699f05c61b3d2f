// The node's public HTTP API as the pages use it (docs/api.md). A token the user typed is
// kept in sessionStorage (this tab only) and sent as `Authorization: Bearer`; a 401 asks the
// app to show the sign-in dialog (app.js listens for "raftflow:unauthenticated").

const TOKEN_KEY = "raftflow.token";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Path segments are encoded: ids are user data and may hold '/', '?' or '#'. */
export function path(...segments) {
  return segments.map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join("/");
}

export function withQuery(url, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${url}?${text}` : url;
}

// A 503 (a shard's leader moving, a mailbox full) is asked again after its Retry-After, as
// docs/api.md tells clients; writes carry a request_id, so a retry applies at most once.
const RETRIES_503 = 3;
const RETRY_WAIT_MAX_MS = 2000;

/** A fresh request id for a write (getRandomValues also works outside secure contexts). */
export function requestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(url, method, body) {
  const headers = {Accept: "application/json"};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt += 1) {
    const answer = await fetch(url, {method, headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
    if (answer.status !== 503 || attempt >= RETRIES_503) return answer;
    const waitMs = Math.min(1000 * (Number(answer.headers.get("Retry-After")) || 1),
      RETRY_WAIT_MAX_MS);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

/** Call the API; resolves to the JSON answer (null for 204), rejects with an ApiError. */
export async function call(url, {method = "GET", body} = {}) {
  const answer = await send(url, method, body);
  if (answer.status === 204) return null;
  let json = null;
  try {
    json = await answer.json();
  } catch {
    json = null;
  }
  if (!answer.ok) {
    const error = (json && json.error) || {};
    if (answer.status === 401) {
      window.dispatchEvent(new CustomEvent("raftflow:unauthenticated",
        {detail: error.message || "a token is needed"}));
    }
    throw new ApiError(answer.status, error.code, error.message, error.field);
  }
  return json;
}

export const ns = (namespace) => path("/api/v1/namespaces", namespace);
export const wf = (namespace, workflowId) => path(ns(namespace) + "/workflows", workflowId);

/** Every page of a run's history (a history holds at most 51,200 events). */
export async function fullHistory(namespace, workflowId, runId) {
  const events = [];
  let next = "";
  do {
    const page = await call(withQuery(`${wf(namespace, workflowId)}/history`,
      {run_id: runId, next_page_token: next, page_size: 1000}));
    events.push(...page.events);
    next = page.next_page_token || "";
  } while (next);
  return events;
}
