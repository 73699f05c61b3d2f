"""What one workflow of `raftflow bench` costs, and waiting for settled shard leadership.

Cost is read over the measured window only (from just after the worker started to the last
result): Raft log entries and commands from the nodes' group-commit metrics, HTTP requests the
SDK's `Transport` sent, CPU of this process and of each local node, the whole machine's busy
fraction and leader changes, each divided by the workflows that completed.

Before the window, `wait_for_settled_leaders` waits until the cluster has spread shard leaders
over the nodes (node/map_duties.py `_balance_leaders`, a few seconds after start): a transfer
during the run costs the commands in flight on that shard a retry.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import TextIO

import aiohttp

from raftflow.bench.observe import (
    BATCH_COUNT,
    BATCH_SUM,
    FORWARDED,
    LEADER_CHANGES,
    NodeRef,
    Snapshot,
    cluster_status,
    take_snapshot,
)
from raftflow.sdk._http import Transport

SETTLE_STABLE_S = 2.0  # the leader of every shard unchanged this long counts as settled
SETTLE_TIMEOUT_S = 20.0  # then start anyway, and say so
SETTLE_POLL_S = 0.25

JsonObject = dict[str, object]
Leaders = tuple[str | None, ...]  # per shard (index = shard number), the leader's node id


async def _leaders(session: aiohttp.ClientSession, addresses: list[str]) -> Leaders | None:
    """Each shard's leader from the first node that answers `GET /api/v1/cluster/status`."""
    status = await cluster_status(session, addresses)
    if status is None:
        return None
    shards = sorted(status.get("shards", []), key=lambda s: int(s["shard"]))
    return tuple(None if s.get("leader") is None else str(s["leader"]) for s in shards)


async def replicas_per_shard(session: aiohttp.ClientSession, addresses: list[str]) -> int:
    """How many replicas each shard has, from cluster status (the same for every shard)."""
    status = await cluster_status(session, addresses)
    counts = {len(s["replicas"]) for s in (status or {}).get("shards", [])}
    if len(counts) != 1:
        raise RuntimeError(f"cannot tell the replicas per shard from cluster status: {counts}")
    return counts.pop()


async def wait_for_settled_leaders(session: aiohttp.ClientSession, addresses: list[str],
                                   out: TextIO) -> bool:
    """Poll cluster status until every shard has a leader and no leader changed for
    SETTLE_STABLE_S; give up after SETTLE_TIMEOUT_S. Says which on `out`; True if settled."""
    began = time.monotonic()
    last: Leaders | None = None
    stable_since: float | None = None
    changes = 0
    while True:
        leaders = await _leaders(session, addresses)
        now = time.monotonic()
        if leaders != last:
            if last is not None and leaders is not None:
                changes += sum(a != b for a, b in zip(last, leaders, strict=False))
            last, stable_since = leaders, now
        complete = last is not None and len(last) > 0 and None not in last
        settled = complete and stable_since is not None and now - stable_since >= SETTLE_STABLE_S
        if settled or now - began >= SETTLE_TIMEOUT_S:
            break
        await asyncio.sleep(SETTLE_POLL_S)
    spread = Counter(last or ())
    where = ", ".join(f"{node}: {count}" for node, count in sorted(spread.items(), key=str))
    verdict = "settled" if settled else f"NOT settled within {SETTLE_TIMEOUT_S:.0f} s"
    out.write(f"shard leadership {verdict} after {now - began:.1f} s "
              f"({len(last or ())} shards; leaders {where or 'unknown'}; "
              f"{changes} leader moves seen while waiting)\n")
    out.flush()
    return settled


@dataclass(frozen=True, slots=True)
class WindowMark:
    """One edge of the measured window: SDK requests sent so far, CPU and node metrics."""

    requests_sent: int
    stream_calls_sent: int
    stream_frames_sent: int
    snapshot: Snapshot


async def mark_window(session: aiohttp.ClientSession, nodes: list[NodeRef],
                      transport: Transport) -> WindowMark:
    # The request counter first, then take_snapshot reads CPU before it scrapes the nodes.
    requests_sent = transport.requests_sent
    return WindowMark(requests_sent=requests_sent,
                      stream_calls_sent=transport.stream_calls_sent,
                      stream_frames_sent=transport.stream_frames_sent,
                      snapshot=await take_snapshot(session, nodes))


def _metric_deltas(nodes: list[NodeRef], before: Snapshot, after: Snapshot,
                   name: str) -> list[float | None]:
    deltas: list[float | None] = []
    for node in nodes:
        old, new = before.node_metrics[node.node_id], after.node_metrics[node.node_id]
        deltas.append(None if old is None or new is None else new[name] - old[name])
    return deltas


def _log_total(deltas: list[float | None], replicas_per_shard: int) -> float | None:
    """Entries (or commands) the cluster committed: every entry is applied once by each of its
    shard's replicas, so the nodes' applied-entries deltas add up to replicas x entries."""
    assert replicas_per_shard >= 1, replicas_per_shard
    if None in deltas:
        return None
    return sum(d for d in deltas if d is not None) / replicas_per_shard


def _per(value: float | None, completed: int, scale: float = 1.0) -> float | None:
    return None if value is None or completed == 0 else round(value * scale / completed, 3)


def cost_summary(nodes: list[NodeRef], before: WindowMark, after: WindowMark,
                 completed: int, replicas_per_shard: int) -> JsonObject:
    """Per completed workflow: log entries, commands, HTTP requests, CPU ms; and the machine."""
    old, new = before.snapshot, after.snapshot
    node_cpu: float | None = 0.0
    for node in nodes:
        cpu_old, cpu_new = old.node_cpu_s[node.node_id], new.node_cpu_s[node.node_id]
        # A remote node (no pid) or a vanished one has no CPU reading: no node total then.
        node_cpu = None if node_cpu is None or cpu_old is None or cpu_new is None \
            else node_cpu + cpu_new - cpu_old
    changes = _metric_deltas(nodes, old, new, LEADER_CHANGES)
    forwarded = _metric_deltas(nodes, old, new, FORWARDED)
    wall_s = new.taken_s - old.taken_s
    machine_cores_s = wall_s * (os.cpu_count() or 1)
    return {
        "commits_per_workflow": _per(_log_total(
            _metric_deltas(nodes, old, new, BATCH_COUNT), replicas_per_shard), completed),
        "commands_per_workflow": _per(_log_total(
            _metric_deltas(nodes, old, new, BATCH_SUM), replicas_per_shard), completed),
        # Requests this process's SDK client and worker sent (retries and long polls included);
        # a node forwarding a call to the shard's leader sends another, not counted here.
        "http_requests_per_workflow": _per(after.requests_sent - before.requests_sent,
                                           completed),
        # Calls a node did not lead the shard for and sent on (one more HTTP exchange each).
        "forwarded_calls_per_workflow": (None if None in forwarded else _per(
            sum(f for f in forwarded if f is not None), completed)),
        # Task calls the worker sent on task streams instead, and the frames that carried them
        # (with the streams' grants): one frame carries whatever was ready at once.
        "stream_calls_per_workflow": _per(
            after.stream_calls_sent - before.stream_calls_sent, completed),
        "stream_frames_per_workflow": _per(
            after.stream_frames_sent - before.stream_frames_sent, completed),
        # Client and worker share this process, so "client" is both.
        "cpu_ms_per_workflow": {"client": _per(new.client_cpu_s - old.client_cpu_s, completed,
                                               1000.0),
                                "nodes": _per(node_cpu, completed, 1000.0)},
        "machine_busy_fraction": (round((new.machine_busy_cpu_s - old.machine_busy_cpu_s)
                                        / machine_cores_s, 3) if machine_cores_s > 0 else None),
        "leader_changes": (None if None in changes
                           else round(sum(c for c in changes if c is not None))),
    }


def describe_cost(cost: JsonObject) -> str:
    """One human line for stderr."""
    cpu = cost["cpu_ms_per_workflow"]
    assert isinstance(cpu, dict)
    busy = cost["machine_busy_fraction"]
    busy_text = "n/a" if not isinstance(busy, float) else f"{100 * busy:.0f}%"
    return (f"per workflow: {cost['commits_per_workflow']} log entries, "
            f"{cost['commands_per_workflow']} commands, "
            f"{cost['http_requests_per_workflow']} SDK HTTP requests "
            f"({cost['forwarded_calls_per_workflow']} forwarded by a node), "
            f"{cost['stream_calls_per_workflow']} stream calls in "
            f"{cost['stream_frames_per_workflow']} frames, CPU ms client+worker "
            f"{cpu['client']} / nodes {cpu['nodes']}; machine busy {busy_text}; "
            f"leader changes {cost['leader_changes']}")
