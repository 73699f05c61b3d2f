"""Benchmark: acknowledged workflow starts per second over HTTP, and their latency.

    python -m raftflow.bench.starts [--address URL ...] [--nodes 3] [--concurrency 64]
                                    [--duration 20] [--warmup 3] [--json]

Without `--address` it launches its own cluster (temp dir, free loopback ports) and always tears
it down. It runs `--warmup` seconds unmeasured, then `--duration` seconds measured, printing
progress once a second. The summary gives acknowledged starts/s, latency percentiles, errors
by status, the nodes' group-commit batch size and commits (from `/metrics`), and the CPU seconds
of this client and of every local node, so that a saturated core is visible. With `--json`,
human output goes to stderr and one JSON object to stdout.

Client and nodes share this machine's cores: the client's own CPU is part of the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TextIO

import aiohttp
import uvloop

from raftflow.bench.load import Recorder, StartLoad, percentile
from raftflow.bench.local_cluster import launched_cluster, sigterm_raises_interrupt
from raftflow.bench.observe import (
    BATCH_COUNT,
    BATCH_SUM,
    COMMITS,
    LEADER_CHANGES,
    NodeRef,
    Snapshot,
    discover_nodes,
    shard_leaders,
    take_snapshot,
)
from raftflow.bench.options import ROUTE_LEADER, ROUTE_ROUND_ROBIN, build_parser

PROGRESS_INTERVAL_S = 1.0
CONNECTIONS_SPARE = 8  # beyond one per client: metrics scrapes and status calls

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class NodeResult:
    node_id: str
    pid: int | None
    cpu_s: float | None
    commits: float | None
    batch_commands_avg: float | None
    leader_changes: float | None

    def to_json(self) -> JsonObject:
        return {"id": self.node_id, "pid": self.pid, "cpu_s": _rounded(self.cpu_s),
                "commits": self.commits, "batch_commands_avg": _rounded(self.batch_commands_avg),
                "leader_changes": self.leader_changes}


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One run's numbers; `errors` and `retries` cover the whole run, warmup included."""

    concurrency: int
    starts: int
    seconds: float
    latencies_ms: list[float]  # ascending
    errors: dict[str, int]
    retries: dict[str, int]
    client_cpu_s: float
    machine_busy_cpu_s: float  # every process on the machine, this benchmark included
    nodes: list[NodeResult]

    @property
    def starts_per_sec(self) -> float:
        return self.starts / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    @property
    def batch_commands_avg(self) -> float | None:
        known = [n.batch_commands_avg for n in self.nodes if n.batch_commands_avg is not None]
        return sum(known) / len(known) if known else None

    def to_json(self) -> JsonObject:
        return {
            "starts": self.starts, "seconds": round(self.seconds, 3),
            "starts_per_sec": round(self.starts_per_sec, 1),
            "p50_ms": _rounded(self.latency_ms(0.50)), "p90_ms": _rounded(self.latency_ms(0.90)),
            "p99_ms": _rounded(self.latency_ms(0.99)), "max_ms": _rounded(self.latency_ms(1.0)),
            "errors": self.errors, "retries": self.retries, "concurrency": self.concurrency,
            "batch_commands_avg": _rounded(self.batch_commands_avg),
            "client_cpu_s": _rounded(self.client_cpu_s),
            "machine_busy_cpu_s": _rounded(self.machine_busy_cpu_s),
            "nodes": [n.to_json() for n in self.nodes],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _delta(after: dict[str, float] | None, before: dict[str, float] | None,
           name: str) -> float | None:
    if after is None or before is None:
        return None
    return after[name] - before[name]


def _node_results(nodes: list[NodeRef], before: Snapshot, after: Snapshot) -> list[NodeResult]:
    results = []
    for node in nodes:
        cpu_before, cpu_after = before.node_cpu_s[node.node_id], after.node_cpu_s[node.node_id]
        metrics_before = before.node_metrics[node.node_id]
        metrics_after = after.node_metrics[node.node_id]
        batch_sum = _delta(metrics_after, metrics_before, BATCH_SUM)
        batch_count = _delta(metrics_after, metrics_before, BATCH_COUNT)
        results.append(NodeResult(
            node_id=node.node_id, pid=node.pid,
            cpu_s=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
            commits=_delta(metrics_after, metrics_before, COMMITS),
            leader_changes=_delta(metrics_after, metrics_before, LEADER_CHANGES),
            batch_commands_avg=(batch_sum / batch_count
                                if batch_sum is not None and batch_count else None)))
    return results


async def _sleep_until(deadline_s: float) -> None:
    await asyncio.sleep(max(0.0, deadline_s - time.perf_counter()))


async def _progress(recorder: Recorder, load_done: asyncio.Event, began_s: float,
                    out: TextIO) -> None:
    acked_before = 0
    while not load_done.is_set():
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(load_done.wait(), PROGRESS_INTERVAL_S)
        now_s = time.perf_counter()
        middle_s = now_s - PROGRESS_INTERVAL_S / 2  # the phase most of this second was in
        phase = ("warmup" if middle_s < recorder.window_start_s
                 else "measure" if middle_s <= recorder.window_end_s else "drain")
        acked = recorder.acked_total
        out.write(f"[{now_s - began_s:6.1f} s {phase:<7}] acked {acked - acked_before:6d}/s  "
                  f"total {acked:8d}  in flight {recorder.in_flight:4d}  "
                  f"retries {sum(recorder.retries.values()):5d}  "
                  f"errors {sum(recorder.errors.values()):5d}\n")
        out.flush()
        acked_before = acked


async def run_benchmark(addresses: list[str], *, namespace: str, concurrency: int,
                        duration_s: float, warmup_s: float, out: TextIO,
                        route: str = ROUTE_ROUND_ROBIN, retry: bool = True) -> BenchResult:
    """Drive the load against `addresses` and measure; the cluster must already be up."""
    assert addresses and concurrency >= 1 and duration_s > 0 and warmup_s >= 0
    connector = aiohttp.TCPConnector(limit=concurrency + CONNECTIONS_SPARE)
    async with aiohttp.ClientSession(connector=connector) as session:
        nodes = await discover_nodes(session, addresses)
        leaders = await shard_leaders(session, addresses) if route == ROUTE_LEADER else None
        began_s = time.perf_counter()
        recorder = Recorder(window_start_s=began_s + warmup_s,
                            window_end_s=began_s + warmup_s + duration_s)
        load = StartLoad(session, addresses, namespace=namespace, concurrency=concurrency,
                         run_tag=os.urandom(4).hex(), recorder=recorder,
                         shard_leaders=leaders, retry=retry)
        load_done = asyncio.Event()

        async def drive() -> None:
            try:
                await load.run()
            finally:
                load_done.set()

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(drive())
            tasks.create_task(_progress(recorder, load_done, began_s, out))
            await _sleep_until(recorder.window_start_s)
            before = await take_snapshot(session, nodes)
            await _sleep_until(recorder.window_end_s)
            after = await take_snapshot(session, nodes)
            load.stop()
    return BenchResult(
        concurrency=concurrency, starts=recorder.acked_in_window, seconds=duration_s,
        latencies_ms=sorted(recorder.latencies_ms), errors=dict(recorder.errors),
        retries=dict(recorder.retries), client_cpu_s=after.client_cpu_s - before.client_cpu_s,
        machine_busy_cpu_s=after.machine_busy_cpu_s - before.machine_busy_cpu_s,
        nodes=_node_results(nodes, before, after))


def print_summary(result: BenchResult, out: TextIO) -> None:
    out.write(f"\nacknowledged starts: {result.starts} in {result.seconds:.1f} s = "
              f"{result.starts_per_sec:.1f} starts/s (concurrency {result.concurrency})\n")
    out.write(f"latency ms (n={len(result.latencies_ms)}, retries included): "
              f"p50 {result.latency_ms(0.5):.1f}  p90 {result.latency_ms(0.9):.1f}  "
              f"p99 {result.latency_ms(0.99):.1f}  max {result.latency_ms(1.0):.1f}\n")
    out.write(f"errors (final answers, whole run): {_counts(result.errors)}\n")
    out.write(f"retries (whole run): {_counts(result.retries)}\n")
    batch = result.batch_commands_avg
    out.write("group commit: avg batch "
              f"{'n/a' if batch is None else f'{batch:.2f}'} commands/entry\n")
    cpu_total = result.client_cpu_s
    for node in result.nodes:
        commits = "n/a" if node.commits is None else f"{node.commits:.0f}"
        batch_text = ("n/a" if node.batch_commands_avg is None
                      else f"{node.batch_commands_avg:.2f}")
        cpu_text = "n/a" if node.cpu_s is None else f"{node.cpu_s:.1f} s"
        changes = "n/a" if node.leader_changes is None else f"{node.leader_changes:.0f}"
        cpu_total += node.cpu_s or 0.0
        out.write(f"  {node.node_id} (pid {node.pid}): commits applied {commits}, "
                  f"avg batch {batch_text}, leader changes {changes}, CPU {cpu_text}\n")
    cores = os.cpu_count() or 1
    out.write(f"CPU over {result.seconds:.1f} s on {cores} cores "
              f"({result.seconds * cores:.1f} core-s): client {result.client_cpu_s:.1f} s, "
              f"client + nodes {cpu_total:.1f} s "
              f"({100 * cpu_total / (result.seconds * cores):.0f}% of the machine); "
              f"whole machine busy {result.machine_busy_cpu_s:.1f} s, so other processes "
              f"{max(0.0, result.machine_busy_cpu_s - cpu_total):.1f} s\n")
    out.flush()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"


def _bench(addresses: list[str], args: argparse.Namespace, out: TextIO) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run_benchmark(
            addresses, namespace=args.namespace, concurrency=args.concurrency,
            duration_s=args.duration, warmup_s=args.warmup, out=out, route=args.route,
            retry=not args.ignore_retry_after))
    print_summary(result, out)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        sys.stdout.flush()
    return 0 if result.starts > 0 else 1


def run_cli(args: argparse.Namespace) -> int:
    """Run with parsed options (also the `raftflow bench starts` entry point)."""
    out = sys.stderr if args.json else sys.stdout
    if args.duration <= 0:
        out.write("error: --duration must be positive\n")
        return 2
    with sigterm_raises_interrupt():
        try:
            if args.address:
                return _bench(list(args.address), args, out)
            out.write(f"launching a {args.nodes}-node cluster on 127.0.0.1 ...\n")
            out.flush()
            with launched_cluster(nodes=args.nodes, shards=args.shards,
                                  parent_dir=args.data_dir, keep_data=args.keep_data) as addresses:
                out.write(f"cluster ready: {', '.join(addresses)}\n")
                return _bench(addresses, args, out)
        except KeyboardInterrupt:
            out.write("interrupted\n")
            return 130


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
