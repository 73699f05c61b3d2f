// A run's history as a table whose rows expand to the event's attributes, and its download
// as JSON (the shape of GET .../history: {events: [...]}).

import {el, jsonBlock, table} from "./dom.js";
import {preview, time} from "./format.js";

/** The attribute a row shows inline: what tells events of one type apart. */
function gist(event) {
  const a = event.attributes || {};
  for (const key of ["activity_type", "timer_id", "signal_name", "workflow_type", "reason",
    "marker_name", "cause"]) {
    if (a[key]) return `${key}: ${a[key]}`;
  }
  if (a.failure) return `failure: ${a.failure.message || preview(a.failure)}`;
  if (a.result !== undefined && a.result !== null) return `result: ${preview(a.result, 60)}`;
  return "";
}

export function historyTable(events) {
  const rows = [];
  for (const event of events) {
    const detail = el("tr", {class: "detail", hidden: true,
      id: `event-detail-${event.event_id}`},
    el("td", {colspan: 4}, jsonBlock(event.attributes)));
    const row = el("tr", {class: "clickable event-row", id: `event-${event.event_id}`,
      title: "Show the event's attributes",
      onclick: () => { detail.hidden = !detail.hidden; }},
    el("td", {}, String(event.event_id)), el("td", {}, time(event.timestamp)),
    el("td", {}, el("code", {}, event.event_type)), el("td", {class: "muted"}, gist(event)));
    rows.push(row, detail);
  }
  return table(["ID", "Time", "Type", "Details"], rows, {id: "history-table"});
}

export function downloadLink(events, workflowId, runId) {
  const link = el("a", {id: "download-history", class: "button",
    download: `${workflowId}-${runId}-history.json`.replace(/[^\w.-]+/g, "_")},
  "Download history (JSON)");
  link.addEventListener("click", () => {
    const blob = new Blob([JSON.stringify({events}, null, 2)], {type: "application/json"});
    link.href = URL.createObjectURL(blob);
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
  return link;
}
