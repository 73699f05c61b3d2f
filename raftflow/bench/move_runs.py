"""The two measurements of `raftflow bench moves`, each on a cluster the caller launched.

1. `measure_join_moves`: fill a 3-node cluster with N completed workflows, record every
   shard's snapshot size and log length, join a 4th node (`raftflow node --join`) and time
   each replica move the rebalancer makes for it, StartMove to FinishMove (move_timing.py),
   until no move is in progress and a dry-run rebalance plans none. What the new node then
   holds is what was moved to it: its snapshot files (one per shard that caught up from a
   snapshot) and its WAL (the log entries it received, for every shard).
2. `measure_drain`: join a 4th node, then run the steady load (move_load.py) for a baseline
   window, then run `raftflow cluster drain --node X --wait` as an operator would and keep
   the load running until it returns: the drain window. Both windows summarise the workflows
   started inside them. `drain --wait` returns once the node holds no replica; a last move may
   still be finishing, so the moves are then followed until none is left (reported apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from typing import Any

import aiohttp

from raftflow.bench.elastic_cluster import ElasticCluster
from raftflow.bench.load import percentile
from raftflow.bench.move_load import Tally, fill, running_worker, steady
from raftflow.bench.move_timing import MoveTracker, moves_summary
from raftflow.bench.observe import (
    LEADER_CHANGES,
    NodeRef,
    Snapshot,
    cluster_status,
    discover_nodes,
    take_snapshot,
)
from raftflow.bench.workflow_cost import wait_for_settled_leaders
from raftflow.sdk import Client

JOINED_NODE = "node-4"
STATUS_POLL_S = 0.25  # the resolution of the move times, with the map's propagation
# Every time here is time.perf_counter(), the clock of observe.Snapshot and move_load.Sample.
PLAN_TIMEOUT_S = 5.0
DRAIN_EXTRA_S = 30.0  # the drain command's own start and last poll, beyond --moves-timeout

JsonObject = dict[str, Any]


def bytes_summary(values: list[int]) -> JsonObject:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "max": None}
    return {"count": len(ordered), "p50": int(percentile([float(v) for v in ordered], 0.5)),
            "max": ordered[-1]}


async def _nothing_planned(session: aiohttp.ClientSession, addresses: list[str]) -> bool:
    """True if a dry-run rebalance (any node forwards it to the map's leader) plans no move and
    the leader's map has none in progress. The status polled before may come from a node whose
    map is a round behind: right after a join it showed the new node active and no move while
    the leader had already started its moves (and plans nothing more meanwhile), and the join
    was taken as settled with no move seen (test_bench_moves_smoke failed so, twice)."""
    timeout = aiohttp.ClientTimeout(total=PLAN_TIMEOUT_S)
    for address in addresses:
        try:
            async with session.post(f"{address}/api/v1/cluster/rebalance",
                                    params={"dry_run": "true"}, timeout=timeout) as answer:
                if answer.status == 200:
                    plan = await answer.json()
                    return not plan.get("planned") and not plan.get("moves_in_progress")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            continue
    return False


async def _settle_moves(session: aiohttp.ClientSession, addresses: list[str],
                        tracker: MoveTracker, *, joined: str | None, timeout_s: float) -> float:
    """Poll the status into `tracker` until no move is in progress or planned (and `joined`,
    if given, is active); the seconds that took. Raises TimeoutError after `timeout_s`."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        status = await cluster_status(session, addresses)
        now = time.perf_counter()
        if status is not None:
            moves = status.get("moves") or []
            tracker.observe(now, moves)
            states = {n["id"]: n.get("state") for n in status["nodes"]}
            if (not moves and (joined is None or states.get(joined) == "active")
                    and all(s.get("leader") for s in status["shards"])
                    and await _nothing_planned(session, addresses)):
                return now - began
        await asyncio.sleep(STATUS_POLL_S)
    raise TimeoutError(f"moves still in progress after {timeout_s:.0f} s")


async def _poll_moves(session: aiohttp.ClientSession, addresses: list[str],
                      tracker: MoveTracker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        status = await cluster_status(session, addresses)
        if status is not None:
            tracker.observe(time.perf_counter(), status.get("moves") or [])
        with contextlib.suppress(TimeoutError):  # the next poll is due
            await asyncio.wait_for(stop.wait(), STATUS_POLL_S)


async def _join_and_settle(cluster: ElasticCluster, session: aiohttp.ClientSession,
                           timeout_s: float) -> tuple[float, MoveTracker]:
    addresses = cluster.addresses()  # the nodes before the join answer the status
    tracker = MoveTracker()
    cluster.join(JOINED_NODE)
    print(f"joined {JOINED_NODE}; timing its replica moves ...", file=sys.stderr, flush=True)
    seconds = await _settle_moves(session, addresses, tracker, joined=JOINED_NODE,
                                  timeout_s=timeout_s)
    return seconds, tracker


async def measure_join_moves(cluster: ElasticCluster, *, workflows: int, concurrency: int,
                             activities: int, timeout_s: float) -> JsonObject:
    addresses = cluster.addresses()
    async with aiohttp.ClientSession() as observer:
        await wait_for_settled_leaders(observer, addresses, sys.stderr)
        began = time.perf_counter()
        tally = Tally()
        if workflows:
            print(f"filling: {workflows} workflows ...", file=sys.stderr, flush=True)
            async with await Client.connect(addresses) as client:
                tally = await fill(client, workflows=workflows, concurrency=concurrency,
                                   activities=activities)
        fill_s = time.perf_counter() - began
        status = await cluster_status(observer, addresses)
        assert status is not None, "no node answered the status after the fill"
        log_entries = [int(s.get("commit_index") or 0) for s in status["shards"]]
        before = {node: cluster.snapshot_bytes(node) for node in cluster.node_ids}
        join_s, tracker = await _join_and_settle(cluster, observer, timeout_s)
    timings = tracker.timings()
    received = cluster.snapshot_bytes(JOINED_NODE)
    moved_in = sorted({t.key.group for t in timings
                       if t.key.added == JOINED_NODE and t.key.group >= 0})
    shards = range(len(status["shards"]))
    state = [max((before[node].get(shard, 0) for node in before), default=0) for shard in shards]
    snapshots_in = [received.get(shard, 0) for shard in moved_in]
    dir_bytes = cluster.dir_bytes(JOINED_NODE)
    return {
        "workflows": workflows, "completed": len(tally.samples), "failed": len(tally.errors),
        "fill_seconds": round(fill_s, 1),
        "log_entries_per_shard": bytes_summary(log_entries),
        "snapshot_bytes_per_shard": bytes_summary(state),
        "shards_without_snapshot": sum(1 for size in state if size == 0),
        "moved_in_shards": len(moved_in),
        "moved_in_snapshot_bytes": bytes_summary(snapshots_in),
        "joined_node_wal_bytes": dir_bytes - sum(received.values()),
        "joined_node_dir_bytes": dir_bytes,
        # Everything the new node holds came to it by the moves (nothing else ran meanwhile):
        # snapshot files and the log entries in its WAL, shared out over the shards it got.
        "moved_bytes_per_shard": dir_bytes // len(moved_in) if moved_in else None,
        "join_seconds": round(join_s, 1),
        "moves": moves_summary(timings),
    }


def _leader_changes(before: Snapshot, after: Snapshot) -> int | None:
    total = 0.0
    for node, metrics in after.node_metrics.items():
        earlier = before.node_metrics.get(node)
        if metrics is None or earlier is None:
            return None
        total += metrics[LEADER_CHANGES] - earlier[LEADER_CHANGES]
    return int(total)


def _window(tally: Tally, start: Snapshot, end: Snapshot) -> JsonObject:
    summary = tally.window(start.taken_s, end.taken_s)
    cores = os.cpu_count() or 1
    seconds = end.taken_s - start.taken_s
    summary["machine_busy_fraction"] = round(
        (end.machine_busy_cpu_s - start.machine_busy_cpu_s) / (seconds * cores), 2)
    summary["leader_changes"] = _leader_changes(start, end)
    return summary


async def _run_drain_command(node: str, address: str, timeout_s: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "raftflow", "cluster", "drain", "--node", node, "--wait",
        "--wait-timeout", str(timeout_s), "--json", "--address", address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s + DRAIN_EXTRA_S)
    except TimeoutError:
        process.kill()  # our own child, by its handle
        await process.wait()
        return -1, "the drain command did not return"
    assert process.returncode is not None
    return process.returncode, (out + err).decode(errors="replace").strip()


async def measure_drain(cluster: ElasticCluster, *, drain_node: str, concurrency: int,
                        activities: int, warmup_s: float, baseline_s: float,
                        timeout_s: float) -> JsonObject:
    async with aiohttp.ClientSession() as observer:
        await wait_for_settled_leaders(observer, cluster.addresses(), sys.stderr)
        join_s, join_tracker = await _join_and_settle(cluster, observer, timeout_s)
        addresses = cluster.addresses()
        others = [cluster.address(n) for n in cluster.node_ids if n != drain_node]
        assert drain_node in cluster.node_ids and others, (drain_node, cluster.node_ids)
        await wait_for_settled_leaders(observer, addresses, sys.stderr)
        nodes: list[NodeRef] = await discover_nodes(observer, addresses)
        tally, stop = Tally(), asyncio.Event()
        task_queue = f"steady-{uuid.uuid4().hex[:8]}"
        async with await Client.connect(addresses) as client, \
                running_worker(client, task_queue, concurrency):
            load = asyncio.create_task(steady(client, tally, stop, task_queue=task_queue,
                                              concurrency=concurrency, activities=activities))
            try:
                await asyncio.sleep(warmup_s)
                base_start = await take_snapshot(observer, nodes)
                print(f"baseline: {baseline_s:g} s of steady load ...", file=sys.stderr,
                      flush=True)
                await asyncio.sleep(baseline_s)
                drain_start = await take_snapshot(observer, nodes)
                tracker, polled = MoveTracker(), asyncio.Event()
                poller = asyncio.create_task(_poll_moves(observer, others, tracker, polled))
                print(f"draining {drain_node} under the same load ...", file=sys.stderr,
                      flush=True)
                returncode, output = await _run_drain_command(drain_node, others[0], timeout_s)
                drain_end = await take_snapshot(observer, nodes)
                polled.set()
                await poller
            finally:
                stop.set()
                await load
        # `drain --wait` returns once the node holds nothing; a move may still be finishing.
        await _settle_moves(observer, others, tracker, joined=None, timeout_s=timeout_s)
        settled_s = time.perf_counter() - drain_end.taken_s
    late = [t for t in tracker.timings()
            if t.finished_s is not None and t.finished_s > drain_end.taken_s]
    return {
        "concurrency": concurrency, "activities": activities, "drained_node": drain_node,
        "join_seconds": round(join_s, 1), "join_moves": moves_summary(join_tracker.timings()),
        "baseline": _window(tally, base_start, drain_start),
        "drain": _window(tally, drain_start, drain_end),
        "drain_command": {"returncode": returncode,
                          "seconds": round(drain_end.taken_s - drain_start.taken_s, 1),
                          "output": output[-500:]},
        "drain_moves": moves_summary(tracker.timings()),
        "moves_finished_after_drain_returned": [
            {"group": t.key.group, "add": t.key.added, "remove": t.key.leaving,
             "after_s": round((t.finished_s or 0.0) - drain_end.taken_s, 2)} for t in late],
        "moves_settled_after_drain_returned_s": round(settled_s, 1),
        "errors_total": len(tally.errors),
    }
