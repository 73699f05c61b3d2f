// One run: summary, input and result, pending activities, timers and children, the history
// as a table and as a timeline, actions, and the history's download. Refreshes while the
// run is open.

import {call, fullHistory, withQuery, wf} from "./api.js";
import {clear, el, errorBox, jsonBlock, statusBadge, table} from "./dom.js";
import {runDuration, time} from "./format.js";
import {downloadLink, historyTable} from "./history_view.js";
import {autoRefresh} from "./refresh.js";
import {timeline} from "./timeline_view.js";
import {actionButtons} from "./workflow_actions.js";

export const name = "workflow";

export function render(view, params, ui) {
  const {namespace, workflowId} = params;
  let runId = params.run_id || "";
  let closed = false;
  // The history is read again only when its length changed (a history may hold 51,200
  // events: the 3 s refresh must not page through them all each time).
  let events = [];
  let eventsOf = "";
  const message = el("div", {id: "action-message"});
  const body = el("div", {id: "workflow-body"});
  const head = el("div");
  const timelineBox = el("div");
  const historyBox = el("div");
  view.append(el("h2", {}, "Workflow ", el("code", {id: "workflow-id"}, workflowId)),
    message, body);

  const done = (error, text) => {
    clear(message).append(error ? errorBox(error) : el("p", {class: "ok"}, text));
    refresher.now();
  };

  async function load() {
    let d;
    let changed = false;
    try {
      d = await call(withQuery(wf(namespace, workflowId), {run_id: runId}));
      runId = d.run_id;
      if (eventsOf !== runId || events.length !== d.history_length) {
        events = await fullHistory(namespace, workflowId, runId);
        eventsOf = runId;
        changed = true;
      }
    } catch (error) {
      clear(body).append(errorBox(error));
      eventsOf = "";
      return;
    }
    closed = d.status !== "RUNNING";
    if (!body.contains(head)) clear(body).append(head, timelineBox, historyBox);
    clear(head).append(
      actionButtons(namespace, d, ui, done),
      el("div", {class: "grid"}, summary(d, namespace, ui), payloads(d, events)),
      pending(d, events, namespace, ui));
    clear(timelineBox).append(el("h3", {}, "Timeline"), timeline(events, d.close_time));
    if (!changed) return;
    // Rows the user opened stay open when the table is rebuilt.
    const opened = [...historyBox.querySelectorAll("tr.detail:not([hidden])")].map((r) => r.id);
    clear(historyBox).append(
      el("h3", {}, `History (${events.length} events) `, downloadLink(events, workflowId, runId)),
      historyTable(events));
    for (const id of opened) {
      const row = document.getElementById(id);
      if (row) row.hidden = false;
    }
  }

  const refresher = autoRefresh(load, {enabled: () => !closed});
  return () => refresher.stop();
}

function summary(d, namespace, ui) {
  const link = (id, run) => el("a", {href: ui.href(["ns", namespace, "workflows", id],
    {run_id: run})}, `${id} / ${run}`);
  const items = [
    ["Workflow ID", d.workflow_id], ["Run ID", el("code", {id: "run-id"}, d.run_id)],
    ["Type", d.workflow_type], ["Status", el("span", {id: "workflow-status"},
      statusBadge(d.status))],
    ["Task queue", d.task_queue], ["Start", time(d.start_time)], ["Close", time(d.close_time)],
    ["Duration", runDuration(d.start_time, d.close_time)],
    ["History length", String(d.history_length)],
    ["Parent", d.parent ? link(d.parent.workflow_id, d.parent.run_id) : "none"],
  ];
  if (d.continued_execution_run_id) {
    items.push(["Continued from", link(d.workflow_id, d.continued_execution_run_id)]);
  }
  if (d.reason !== undefined) items.push(["Reason", d.reason]);
  return el("div", {}, el("h3", {}, "Summary"), el("dl", {class: "summary", id: "summary"},
    items.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
}

function payloads(d, events) {
  const started = events.find((e) => e.event_type === "WorkflowExecutionStarted");
  const parts = [el("h3", {}, "Input"),
    jsonBlock(started ? started.attributes.input : undefined, {id: "workflow-input"})];
  if (d.result !== undefined) {
    parts.push(el("h3", {}, "Result"), jsonBlock(d.result, {id: "workflow-result"}));
  }
  if (d.failure !== undefined) {
    parts.push(el("h3", {}, "Failure"), jsonBlock(d.failure, {id: "workflow-failure"}));
  }
  return el("div", {}, parts);
}

function pending(d, events, namespace, ui) {
  const parts = [el("h3", {}, `Pending activities (${d.pending_activity_count})`)];
  const activities = d.pending_activities || [];
  parts.push(activities.length ? table(["Activity", "Type", "State", "Attempt",
    "Scheduled", "Last failure", "Heartbeat details", "Worker"], activities.map((a) => [
    a.activity_id, a.activity_type,
    a.cancel_requested ? `${a.state} (cancel requested)` : a.state,
    `${a.attempt}${a.maximum_attempts ? ` of ${a.maximum_attempts}` : ""}`,
    time(a.current_attempt_scheduled_time) + (a.next_attempt_schedule_time
      ? ` (next ${time(a.next_attempt_schedule_time)})` : ""),
    a.last_failure ? `${a.last_failure.type ? `${a.last_failure.type}: ` : ""}${
      a.last_failure.message}` : "",
    a.heartbeat_details === null ? "" : jsonBlock(a.heartbeat_details),
    a.last_worker_identity]), {id: "pending-activities"})
    : el("p", {class: "muted"}, "None."));
  const timers = d.pending_timers || [];
  parts.push(el("h3", {}, `Pending timers (${d.pending_timer_count})`), timers.length
    ? table(["Timer", "Started event", "Fires at"], timers.map((t) =>
      [t.timer_id, String(t.started_event_id), time(t.fire_time)]), {id: "pending-timers"})
    : el("p", {class: "muted"}, "None."));
  const children = childrenOf(events);
  if (children.length) {
    parts.push(el("h3", {}, `Children (${d.pending_children
      ? d.pending_children.length : 0} open)`), table(["Workflow", "Type", "Run", "State",
      "Close policy"], children.map((c) => [el("a", {href: ui.href(["ns", namespace,
      "workflows", c.workflow_id], {run_id: c.run_id})}, c.workflow_id), c.workflow_type,
    c.run_id || "", statusBadge(c.state), c.parent_close_policy]), {id: "children"}));
  }
  return el("div", {}, parts);
}

// A child's outcome as its parent's history records it (Temporal's event names).
const CHILD_OUTCOMES = {
  ChildWorkflowExecutionCompleted: "COMPLETED", ChildWorkflowExecutionFailed: "FAILED",
  ChildWorkflowExecutionCanceled: "CANCELED", ChildWorkflowExecutionTerminated: "TERMINATED",
  ChildWorkflowExecutionTimedOut: "TIMED_OUT", StartChildWorkflowExecutionFailed: "NOT_STARTED",
};

/** Every child the run started, open or closed, from its history, in the order started. */
export function childrenOf(events) {
  const byInitiated = new Map();
  for (const event of events) {
    const a = event.attributes || {};
    if (event.event_type === "StartChildWorkflowExecutionInitiated") {
      byInitiated.set(event.event_id, {workflow_id: a.workflow_id,
        workflow_type: a.workflow_type, parent_close_policy: a.parent_close_policy || "",
        run_id: "", state: "STARTING"});
      continue;
    }
    const child = byInitiated.get(a.initiated_event_id);
    if (!child) continue;
    if (event.event_type === "ChildWorkflowExecutionStarted") {
      child.run_id = a.run_id || child.run_id;
      child.state = "RUNNING";
    } else if (event.event_type in CHILD_OUTCOMES) {
      child.run_id = a.run_id || child.run_id;
      child.state = CHILD_OUTCOMES[event.event_type];
    }
  }
  return [...byInitiated.values()];
}
