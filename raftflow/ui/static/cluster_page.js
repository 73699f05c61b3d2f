// The cluster: members and their state, replicas and leaders per node, shards with leader,
// term, commit index and replica lag, replica moves in progress, and draining a node.

import {call, path} from "./api.js";
import {clear, el, errorBox, statusBadge, table} from "./dom.js";
import {autoRefresh} from "./refresh.js";

export const name = "cluster";

export function render(view, params, ui) {
  const message = el("div", {id: "cluster-message"});
  const body = el("div", {id: "cluster-body"});
  view.append(el("h2", {}, "Cluster"), message, body);

  async function drain(node) {
    const values = await ui.confirm({title: `Drain ${node.id}`, action: "Drain",
      text: `Move every shard leader and replica off ${node.id}. It keeps serving until ` +
        "nothing is left on it; then it can be removed."});
    if (values === null) return;
    try {
      await call(path("/api/v1/cluster/nodes", node.id) + "/drain", {method: "POST"});
      clear(message).append(el("p", {class: "ok"}, `Draining ${node.id}`));
    } catch (error) {
      clear(message).append(errorBox(error));
    }
    refresher.now();
  }

  async function load() {
    let status;
    try {
      status = await call("/api/v1/cluster/status");
    } catch (error) {
      clear(body).append(errorBox(error));
      return;
    }
    const lagText = (shard) => shard.replicas.map((r) =>
      `${r}: ${shard.replica_lags && r in shard.replica_lags ? shard.replica_lags[r] : "?"}`)
      .join(", ");
    clear(body).append(
      el("p", {class: "muted"}, `Cluster map epoch ${status.epoch}; ${status.nodes.length} ` +
        `nodes, ${status.shards.length} shards.`),
      el("h3", {}, "Nodes"),
      table(["Node", "Address", "State", "Alive", "Replicas", "Leaders", "PID", ""],
        status.nodes.map((n) => el("tr", {class: "node-row", id: `node-${n.id}`},
          [n.id, n.address || "", statusBadge(n.state), statusBadge(n.alive ? "up" : "down"),
            String(n.replicas), String(n.leaders), n.pid === null ? "" : String(n.pid),
            el("button", {type: "button", class: "danger drain-button",
              disabled: n.state !== "active", onclick: () => drain(n)}, "Drain…")]
            .map((c) => el("td", {}, c)))), {id: "nodes-table"}),
      el("h3", {}, "Shards"),
      table(["Shard", "Leader", "Term", "Commit index", "Replicas", "Lag (entries)"],
        status.shards.map((s) => el("tr", {class: "shard-row", id: `shard-${s.shard}`},
          [String(s.shard), s.leader || el("span", {class: "error"}, "none"), String(s.term),
            String(s.commit_index), s.replicas.join(", "), lagText(s)]
            .map((c) => el("td", {}, c)))), {id: "shards-table"}),
      el("h3", {}, "Moves in progress"),
      status.moves.length ? table(["Shard", "Learner", "Promoted", "Leaving"],
        status.moves.map((m) => [m.shard < 0 ? "meta" : String(m.shard), m.learner || "",
          m.promoted || "", m.leaving || ""]), {id: "moves-table"})
        : el("p", {class: "muted", id: "no-moves"}, "None."));
  }

  const refresher = autoRefresh(load);
  return () => refresher.stop();
}
