// The cluster's namespaces: retention, description, rate limits and search attributes.

import {call} from "./api.js";
import {clear, el, errorBox, table} from "./dom.js";
import {durationMs} from "./format.js";

export const name = "namespaces";

const rate = (perS) => (perS === null || perS === undefined ? "cluster default" : `${perS}/s`);

export function render(view, params, ui) {
  const body = el("div", {id: "namespaces-body"});
  view.append(el("h2", {}, "Namespaces"), body);
  call("/api/v1/namespaces").then((answer) => {
    clear(body).append(table(["Namespace", "Description", "Retention", "Start rate",
      "Poll rate", "Search attributes"], answer.namespaces.map((n) => el("tr",
      {class: "namespace-row", id: `namespace-${n.name}`}, [
        el("a", {href: ui.href(["ns", n.name, "workflows"])}, n.name), n.description,
        durationMs(n.retention_ms), rate(n.start_rate_per_s), rate(n.poll_rate_per_s),
        Object.entries(n.search_attributes || {}).map(([k, t]) => `${k} (${t})`).join(", ")]
        .map((c) => el("td", {}, c)))), {id: "namespaces-table"}));
  }, (error) => clear(body).append(errorBox(error)));
}
