// A run's actions: signal, cancel, terminate and reset, each behind a confirmation dialog.

import {call, requestId, wf} from "./api.js";
import {el} from "./dom.js";

function parseJson(text, field) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${field} is not valid JSON`);
  }
}

/** Buttons for the run `d` (its description); `done(message)` is called after an action. */
export function actionButtons(namespace, d, ui, done) {
  const url = wf(namespace, d.workflow_id);
  const running = d.status === "RUNNING";
  const act = async (what, ask, send) => {
    const values = await ui.confirm(ask);
    if (values === null) return;
    try {
      await send(values);
      done(null, `${what} sent`);
    } catch (error) {
      done(error);
    }
  };
  const button = (id, label, handler, enabled = running, danger = false) =>
    el("button", {id, type: "button", disabled: !enabled, class: danger ? "danger" : "",
      onclick: handler}, label);
  return el("div", {class: "actions", id: "workflow-actions"},
    button("action-signal", "Signal…", () => act("Signal", {
      title: "Signal workflow", action: "Send signal",
      text: `Send a signal to ${d.workflow_id} (run ${d.run_id}).`,
      fields: [{name: "signal_name", label: "Signal name"},
        {name: "input", label: "Input (JSON, optional)", multiline: true}],
    }, (v) => call(`${url}/signal`, {method: "POST", body: {signal_name: v.signal_name,
      input: parseJson(v.input, "input"), run_id: d.run_id, request_id: requestId()}}))),
    button("action-cancel", "Cancel…", () => act("Cancel request", {
      title: "Cancel workflow", action: "Request cancel",
      text: `Ask ${d.workflow_id} (run ${d.run_id}) to cancel; its code decides how.`,
      fields: [{name: "reason", label: "Reason"}],
    }, (v) => call(`${url}/cancel`, {method: "POST", body: {reason: v.reason,
      run_id: d.run_id, request_id: requestId()}})), running, true),
    button("action-terminate", "Terminate…", () => act("Terminate", {
      title: "Terminate workflow", action: "Terminate",
      text: `Terminate ${d.workflow_id} (run ${d.run_id}) now. Its code gets no say.`,
      fields: [{name: "reason", label: "Reason", value: "terminated from the UI"}],
    }, (v) => call(`${url}/terminate`, {method: "POST", body: {reason: v.reason,
      run_id: d.run_id, request_id: requestId()}})), running, true),
    button("action-reset", "Reset…", () => act("Reset", {
      title: "Reset workflow", action: "Reset",
      text: `Start a new run of ${d.workflow_id} from a workflow task of run ${d.run_id}; ` +
        "an open run is terminated. Give an event id, or leave it empty for the last " +
        "completed workflow task.",
      fields: [{name: "event_id", label: "Event id (WorkflowTaskCompleted)"},
        {name: "reason", label: "Reason", value: "reset from the UI"}],
    }, async (v) => {
      const body = {reason: v.reason, run_id: d.run_id, request_id: requestId()};
      if (v.event_id.trim()) body.event_id = Number(v.event_id);
      else body.reset_type = "LastWorkflowTask";
      const answer = await call(`${url}/reset`, {method: "POST", body});
      ui.go(ui.href(["ns", namespace, "workflows", d.workflow_id], {run_id: answer.run_id}));
    }), true, true));
}
