// The workflows of a namespace: the visibility query box, status filter with counts,
// pages (next / previous), auto-refresh.

import {call, ns, withQuery} from "./api.js";
import {clear, el, errorBox, statusBadge, table} from "./dom.js";
import {runDuration, time} from "./format.js";
import {autoRefresh} from "./refresh.js";

export const name = "workflows";

// The API's status names (answers) and the query parameter `status=` takes them too.
export const STATUSES = ["RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED",
  "TIMED_OUT", "CONTINUED_AS_NEW"];
const PAGE_SIZES = [10, 20, 50, 100];
// Counts ask every shard eight times (all, and per status), each read behind a log barrier
// on the shard's leader: they refresh less often than the page shown.
const COUNTS_REFRESH_MS = 15000;

export function render(view, params, ui) {
  const namespace = params.namespace;
  const query = params.query || "";
  const status = params.status || "";
  const pageSize = Number(params.page_size) || 20;
  // Tokens of the pages before the one shown: "previous" pops one.
  const tokens = [];
  let current = "";
  let next = null;

  const queryInput = el("input", {id: "query-input", type: "search", size: 70, value: query,
    placeholder: "WorkflowType = 'Order' AND StartTime > '2026-12-01T00:00:00Z'"});
  const statusSelect = el("select", {id: "status-select"}, el("option", {value: ""}, "All"),
    STATUSES.map((s) => el("option", {value: s}, s)));
  statusSelect.value = status;
  const sizeSelect = el("select", {id: "page-size"}, PAGE_SIZES.map((n) =>
    el("option", {value: n}, String(n))));
  sizeSelect.value = String(pageSize);
  const refreshBox = el("input", {id: "auto-refresh", type: "checkbox", checked: true});
  const apply = () => ui.go(ui.href(["ns", namespace, "workflows"], {query: queryInput.value.trim(),
    status: statusSelect.value, page_size: sizeSelect.value}));
  const form = el("form", {class: "toolbar", id: "query-form", onsubmit: (e) => {
    e.preventDefault();
    apply();
  }}, queryInput, el("button", {type: "submit", id: "query-apply"}, "Search"),
  el("label", {}, "Status ", statusSelect), el("label", {}, "Page size ", sizeSelect),
  el("label", {}, refreshBox, " auto-refresh"));
  statusSelect.addEventListener("change", apply);
  sizeSelect.addEventListener("change", apply);

  const counts = el("div", {class: "counts", id: "counts"});
  const message = el("div", {id: "list-message"});
  const body = el("div", {id: "workflow-list"});
  const prev = el("button", {id: "page-prev", type: "button", disabled: true}, "‹ Previous");
  const nextButton = el("button", {id: "page-next", type: "button", disabled: true}, "Next ›");
  const pageLabel = el("span", {id: "page-number", class: "muted"}, "page 1");
  view.append(el("h2", {}, "Workflows in ", el("code", {}, namespace)), form, counts, message,
    body, el("div", {class: "pager"}, prev, pageLabel, nextButton));

  async function loadCounts() {
    const base = withQuery(`${ns(namespace)}/workflow-count`, {query});
    const all = await call(base);
    const each = await Promise.all(STATUSES.map((s) =>
      call(withQuery(`${ns(namespace)}/workflow-count`, {query, status: s}))));
    clear(counts).append(...[
      el("a", {href: ui.href(["ns", namespace, "workflows"], {query}),
        class: status ? "chip" : "chip active", id: "count-all"},
      `All ${all.count}`),
      STATUSES.map((s, i) => el("a", {class: status === s ? "chip active" : "chip",
        id: `count-${s}`, href: ui.href(["ns", namespace, "workflows"], {query, status: s})},
      `${s} ${each[i].count}`))].flat());
  }

  async function loadPage() {
    const answer = await call(withQuery(`${ns(namespace)}/workflows`,
      {query, status, page_size: pageSize, next_page_token: current}));
    next = answer.next_page_token;
    const rows = answer.workflows.map((w) => [
      el("a", {href: ui.href(["ns", namespace, "workflows", w.workflow_id], {run_id: w.run_id}),
        class: "workflow-link"}, w.workflow_id),
      el("code", {class: "run-id"}, w.run_id), w.workflow_type, statusBadge(w.status),
      w.task_queue, time(w.start_time), time(w.close_time),
      runDuration(w.start_time, w.close_time)]);
    clear(body).append(rows.length ? table(["Workflow ID", "Run ID", "Type", "Status",
      "Task queue", "Start", "Close", "Duration"], rows, {id: "workflows-table"})
      : el("p", {class: "muted", id: "no-workflows"}, "No workflows match."));
    prev.disabled = tokens.length === 0;
    nextButton.disabled = !next;
    pageLabel.textContent = `page ${tokens.length + 1}`;
  }

  const guarded = (load, box) => async () => {
    try {
      await load();
    } catch (error) {
      clear(box).append(errorBox(error));
      return;
    }
    if (box === message) clear(box);
  };

  const refresher = autoRefresh(guarded(loadPage, message),
    {enabled: () => refreshBox.checked});
  // A count that fails shows its error in place of the counts, not over the list's.
  const countsRefresher = autoRefresh(guarded(loadCounts, counts),
    {periodMs: COUNTS_REFRESH_MS, enabled: () => refreshBox.checked});
  nextButton.addEventListener("click", () => {
    if (!next) return;
    tokens.push(current);
    current = next;
    refresher.now();
  });
  prev.addEventListener("click", () => {
    if (!tokens.length) return;
    current = tokens.pop();
    refresher.now();
  });
  refreshBox.addEventListener("change", () => {
    refresher.now();
    countsRefresher.now();
  });
  return () => {
    refresher.stop();
    countsRefresher.stop();
  };
}
