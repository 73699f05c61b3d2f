// Schedules of a namespace (list) and one schedule (detail): spec, action, policies, state,
// counters, running and recent actions (links to their workflows), next times.

import {call, ns, path, requestId} from "./api.js";
import {clear, el, errorBox, jsonBlock, statusBadge, table} from "./dom.js";
import {specText, timeMs} from "./format.js";
import {autoRefresh} from "./refresh.js";

export const name = "schedules";

export function render(view, params, ui) {
  return params.scheduleId ? renderOne(view, params, ui) : renderList(view, params, ui);
}

function renderList(view, {namespace}, ui) {
  const body = el("div", {id: "schedules-body"});
  view.append(el("h2", {}, "Schedules in ", el("code", {}, namespace)), body);
  async function load() {
    try {
      const answer = await call(`${ns(namespace)}/schedules`);
      clear(body).append(answer.schedules.length ? table(["Schedule", "Workflow type", "Spec",
        "State", "Recent actions", "Next action"], answer.schedules.map((s) => [
        el("a", {class: "schedule-link", href: ui.href(["ns", namespace, "schedules",
          s.schedule_id])}, s.schedule_id),
        s.workflow_type, specText(s.spec),
        el("span", {}, statusBadge(s.paused ? "paused" : "active"), s.note ? ` ${s.note}` : ""),
        String(s.recent_actions.length), timeMs(s.next_action_times_ms[0])]),
      {id: "schedules-table"}) : el("p", {class: "muted", id: "no-schedules"}, "No schedules."));
    } catch (error) {
      clear(body).append(errorBox(error));
    }
  }
  const refresher = autoRefresh(load);
  return () => refresher.stop();
}

function renderOne(view, {namespace, scheduleId}, ui) {
  const url = path(`${ns(namespace)}/schedules`, scheduleId);
  const message = el("div", {id: "schedule-message"});
  const body = el("div", {id: "schedule-body"});
  view.append(el("h2", {}, "Schedule ", el("code", {id: "schedule-id"}, scheduleId)), message,
    body);
  // Pause, unpause and trigger are patches (docs/api.md, "Schedules"), each confirmed first.
  async function patch(what, ask, build) {
    const values = await ui.confirm(ask);
    if (values === null) return;
    try {
      await call(`${url}/patch`, {method: "POST", body: {...build(values),
        request_id: requestId()}});
      clear(message).append(el("p", {class: "ok"}, `${what} sent`));
    } catch (error) {
      clear(message).append(errorBox(error));
    }
    refresher.now();
  }
  const actions = (paused) => el("div", {class: "actions", id: "schedule-actions"},
    paused
      ? el("button", {type: "button", id: "schedule-unpause", onclick: () => patch("Unpause",
        {title: "Unpause schedule", action: "Unpause", text: `Let ${scheduleId} take its ` +
          "next times again.", fields: [{name: "note", label: "Note"}]},
        (v) => ({unpause: v.note}))}, "Unpause…")
      : el("button", {type: "button", id: "schedule-pause", onclick: () => patch("Pause",
        {title: "Pause schedule", action: "Pause", text: `Skip ${scheduleId}'s times until ` +
          "it is unpaused.", fields: [{name: "note", label: "Note", value: "paused from the UI"}]},
        (v) => ({pause: v.note}))}, "Pause…"),
    el("button", {type: "button", id: "schedule-trigger", onclick: () => patch("Trigger",
      {title: "Trigger schedule", action: "Start now", text: `Start ${scheduleId}'s workflow ` +
        "now, with the schedule's overlap policy."}, () => ({trigger_immediately: {}}))},
    "Trigger now…"));
  const run = (r) => el("a", {href: ui.href(["ns", namespace, "workflows", r.workflow_id],
    {run_id: r.run_id})}, r.workflow_id);
  async function load() {
    let d;
    try {
      d = await call(url);
    } catch (error) {
      clear(body).append(errorBox(error));
      return;
    }
    const {schedule, info} = d;
    const state = schedule.state || {};
    const summary = [["Spec", specText(schedule.spec)],
      ["Workflow", `${schedule.action.workflow_type} on ${schedule.action.task_queue}, ids ` +
        `${schedule.action.workflow_id}-<time>`],
      ["State", el("span", {}, statusBadge(state.paused ? "paused" : "active"),
        state.note ? ` ${state.note}` : "")],
      ["Overlap policy", (schedule.policies || {}).overlap || "skip"],
      ["Actions", String(info.num_actions)],
      ["Missed (catch-up window)", String(info.num_actions_missed_catchup_window)],
      ["Skipped (overlap)", String(info.num_actions_skipped_overlap)],
      ["Created", timeMs(info.created_at_ms)], ["Updated", timeMs(info.last_updated_at_ms)]];
    clear(body).append(actions(Boolean(state.paused)),
      el("dl", {class: "summary", id: "schedule-summary"},
        summary.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("h3", {}, "Running actions"),
      info.running_actions.length ? table(["Workflow", "Run"], info.running_actions.map((r) =>
        [run(r), r.run_id]), {id: "running-actions"}) : el("p", {class: "muted"}, "None."),
      el("h3", {}, "Recent actions"),
      info.recent_actions.length ? table(["Scheduled at", "Started at", "Workflow"],
        [...info.recent_actions].reverse().map((a) => [timeMs(a.scheduled_at_ms),
          timeMs(a.started_at_ms), run(a.action)]), {id: "recent-actions"})
        : el("p", {class: "muted"}, "None yet."),
      el("h3", {}, "Next action times"),
      el("ul", {id: "next-times"}, info.next_action_times_ms.map((t) => el("li", {}, timeMs(t)))),
      el("h3", {}, "Definition"), jsonBlock(schedule, {id: "schedule-json"}));
  }
  const refresher = autoRefresh(load);
  return () => refresher.stop();
}
