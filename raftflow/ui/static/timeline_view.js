// A run's activities, timers and child workflows as bars on one time axis, built from its
// history: a bar starts at the scheduling event and ends at the closing one (or now).

import {el} from "./dom.js";
import {durationMs} from "./format.js";

const ACTIVITY_END = ["ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut",
  "ActivityTaskCanceled"];
const TIMER_END = ["TimerFired", "TimerCanceled"];
const CHILD_END = ["ChildWorkflowExecutionCompleted", "ChildWorkflowExecutionFailed",
  "ChildWorkflowExecutionCanceled", "ChildWorkflowExecutionTerminated",
  "ChildWorkflowExecutionTimedOut", "StartChildWorkflowExecutionFailed"];

/** [{kind, label, start, end, failed}] from the events (times in ms since the epoch). */
export function spans(events) {
  const open = new Map();
  const found = [];
  for (const event of events) {
    const a = event.attributes || {};
    const at = new Date(event.timestamp).getTime();
    const type = event.event_type;
    if (type === "ActivityTaskScheduled" || type === "TimerStarted"
      || type === "StartChildWorkflowExecutionInitiated") {
      const kind = type === "ActivityTaskScheduled" ? "activity"
        : type === "TimerStarted" ? "timer" : "child";
      const label = kind === "activity" ? `activity ${a.activity_type} (${a.activity_id})`
        : kind === "timer" ? `timer ${a.timer_id}` : `child ${a.workflow_type} ${a.workflow_id}`;
      const span = {kind, label, start: at, end: null, failed: false};
      open.set(`${kind}:${event.event_id}`, span);
      found.push(span);
      continue;
    }
    const ref = ACTIVITY_END.includes(type) ? `activity:${a.scheduled_event_id}`
      : TIMER_END.includes(type) ? `timer:${a.started_event_id}`
        : CHILD_END.includes(type) ? `child:${a.initiated_event_id}` : null;
    const span = ref && open.get(ref);
    if (span) {
      span.end = at;
      span.failed = /Failed|TimedOut|Terminated/.test(type);
    }
  }
  return found;
}

export function timeline(events, closeTime) {
  const found = spans(events);
  if (!found.length) return el("p", {class: "muted"}, "No activities, timers or children.");
  const first = new Date(events[0].timestamp).getTime();
  const last = closeTime ? new Date(closeTime).getTime() : Date.now();
  const width = Math.max(last - first, 1);
  const pct = (t) => `${((100 * (t - first)) / width).toFixed(2)}%`;
  return el("div", {class: "timeline", id: "timeline"}, found.map((s) => {
    const end = s.end ?? last;
    const bar = el("div", {class: `bar ${s.kind}${s.end === null ? " open" : ""}${
      s.failed ? " failed" : ""}`, title: `${s.label}: ${durationMs(end - s.start)}${
      s.end === null ? " (pending)" : ""}`});
    bar.style.left = pct(s.start);
    bar.style.width = `max(3px, ${((100 * (end - s.start)) / width).toFixed(2)}%)`;
    return el("div", {class: "lane"}, el("span", {class: "label", title: s.label}, s.label),
      el("div", {class: "track"}, bar));
  }));
}
