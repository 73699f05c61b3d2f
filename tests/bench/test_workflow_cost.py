"""Goal: the per-workflow cost `raftflow bench` reports is arithmetic on what it read.

Method: two synthetic window marks for three nodes (every shard on all three) and a remote one;
the summary must divide the summed node deltas by the replicas per shard and by the workflows.
"""

from __future__ import annotations

from raftflow.bench.observe import (
    BATCH_COUNT,
    BATCH_SUM,
    COMMITS,
    FORWARDED,
    LEADER_CHANGES,
    NodeRef,
    Snapshot,
)
from raftflow.bench.workflow_cost import WindowMark, cost_summary

NODES = [NodeRef(node_id=f"n{i}", address=f"http://n{i}", pid=100 + i) for i in range(3)]


def _mark(*, requests: int, cpu_s: float, entries: float, commands: float, elections: float,
          taken_s: float, forwarded: float = 0.0) -> WindowMark:
    metrics = {BATCH_COUNT: entries, BATCH_SUM: commands, COMMITS: entries,
               LEADER_CHANGES: elections, FORWARDED: forwarded}
    snapshot = Snapshot(taken_s=taken_s, client_cpu_s=cpu_s, machine_busy_cpu_s=2 * cpu_s,
                        node_cpu_s={n.node_id: cpu_s for n in NODES},
                        node_metrics={n.node_id: dict(metrics) for n in NODES})
    return WindowMark(requests_sent=requests, stream_calls_sent=0, stream_frames_sent=0,
                      snapshot=snapshot)


def test_cost_divides_replicated_deltas_by_replicas_and_workflows() -> None:
    before = _mark(requests=10, cpu_s=1.0, entries=100, commands=150, elections=2, taken_s=0.0,
                   forwarded=5)
    after = _mark(requests=110, cpu_s=3.0, entries=600, commands=950, elections=2, taken_s=4.0,
                  forwarded=25)
    cost = cost_summary(NODES, before, after, completed=100, replicas_per_shard=3)
    # Each node applied 500 entries; all three replicate every shard: 500 entries in all.
    assert cost["commits_per_workflow"] == 5.0
    assert cost["commands_per_workflow"] == 8.0
    assert cost["http_requests_per_workflow"] == 1.0
    # Forwards are not replicated: each node's own, summed (20 on each of three nodes).
    assert cost["forwarded_calls_per_workflow"] == 0.6
    assert cost["cpu_ms_per_workflow"] == {"client": 20.0, "nodes": 60.0}
    assert cost["leader_changes"] == 0


def test_cost_of_remote_nodes_is_unknown_not_zero() -> None:
    remote = [NodeRef(node_id=n.node_id, address=n.address, pid=None) for n in NODES]
    before = _mark(requests=0, cpu_s=1.0, entries=0, commands=0, elections=0, taken_s=0.0)
    after = _mark(requests=9, cpu_s=2.0, entries=30, commands=48, elections=1, taken_s=1.0)
    for node in remote:
        before.snapshot.node_cpu_s[node.node_id] = None
        after.snapshot.node_cpu_s[node.node_id] = None
    cost = cost_summary(remote, before, after, completed=6, replicas_per_shard=3)
    assert cost["cpu_ms_per_workflow"] == {"client": 166.667, "nodes": None}
    assert cost["commits_per_workflow"] == 5.0 and cost["leader_changes"] == 3
