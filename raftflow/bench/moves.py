"""`raftflow bench moves`: replica moves against shard state size, and a drain under load.

Part "moves": for each size N (`--sizes`), on a fresh 3-node cluster (16 shards, fsync on,
temp dir, free loopback ports, always torn down), complete N workflows of the `raftflow bench`
type, then join a 4th node with `raftflow node --join` and time each replica move the
rebalancer makes for it (StartMove to FinishMove, read from `cluster status` every 0.25 s),
reporting the shards' snapshot sizes and log lengths before the join and the bytes the new
node holds afterwards. Part "drain": on a fresh cluster grown to 4 nodes the same way, a
steady load (`--concurrency` workflows in flight) for `--baseline` seconds, then
`raftflow cluster drain --node X --wait` under the same load; workflow latency p50/p99/max,
start-call p99, throughput and client errors of both windows (move_runs.py).

Human lines go to stderr; with `--json` one JSON object `{"moves": [...], "drain": {...}}`
goes to stdout. Numbers belong in docs/benchmarks.md, never in test assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import uvloop

from raftflow.bench.elastic_cluster import launched_elastic_cluster
from raftflow.bench.local_cluster import sigterm_raises_interrupt
from raftflow.bench.move_options import build_parser
from raftflow.bench.move_runs import measure_drain, measure_join_moves

NODES = 3
SPARE_NODES = 1  # the node that joins

JsonObject = dict[str, Any]


def _size_run(size: int, args: argparse.Namespace) -> JsonObject:
    print(f"--- {size} workflows: launching a {NODES}-node cluster ...", file=sys.stderr,
          flush=True)
    with launched_elastic_cluster(nodes=NODES, shards=args.shards, spare_nodes=SPARE_NODES,
                                  parent_dir=args.data_dir, keep_data=args.keep_data) as cluster:
        result = uvloop.run(measure_join_moves(
            cluster, workflows=size, concurrency=args.fill_concurrency,
            activities=args.activities, timeout_s=args.moves_timeout))
    moves = result["moves"]
    state = result["snapshot_bytes_per_shard"]
    print(f"{size} workflows ({result['failed']} failed, fill {result['fill_seconds']} s): "
          f"snapshot per shard p50 {state['p50']} B max {state['max']} B "
          f"({result['shards_without_snapshot']} shards without one), log entries per shard "
          f"p50 {result['log_entries_per_shard']['p50']}; join took {result['join_seconds']} s, "
          f"{moves['shard_moves']} shard moves: p50 {moves['move']['p50_s']} s, "
          f"max {moves['move']['max_s']} s (catch-up p50 {moves['catch_up']['p50_s']} s); "
          f"node-4 received {result['moved_in_shards']} shards, "
          f"{result['moved_bytes_per_shard']} B each (snapshot p50 "
          f"{result['moved_in_snapshot_bytes']['p50']} B, WAL "
          f"{result['joined_node_wal_bytes']} B in all)", file=sys.stderr, flush=True)
    return result


def _describe_window(name: str, window: JsonObject) -> str:
    return (f"{name}: {window['seconds']} s, {window['per_sec']} workflows/s, p50 "
            f"{window['p50_ms']} ms, p99 {window['p99_ms']} ms, max {window['max_ms']} ms, "
            f"start p99 {window['start_p99_ms']} ms, errors {window['errors']}, leader changes "
            f"{window['leader_changes']}, machine busy {window['machine_busy_fraction']}")


def _drain_run(args: argparse.Namespace) -> JsonObject:
    print(f"--- drain: launching a {NODES}-node cluster, then joining node-4 ...",
          file=sys.stderr, flush=True)
    with launched_elastic_cluster(nodes=NODES, shards=args.shards, spare_nodes=SPARE_NODES,
                                  parent_dir=args.data_dir, keep_data=args.keep_data) as cluster:
        result = uvloop.run(measure_drain(
            cluster, drain_node=args.drain_node, concurrency=args.concurrency,
            activities=args.activities, warmup_s=args.warmup, baseline_s=args.baseline,
            timeout_s=args.moves_timeout))
    moves = result["drain_moves"]
    print(_describe_window("baseline", result["baseline"]), file=sys.stderr)
    print(_describe_window("drain   ", result["drain"]), file=sys.stderr)
    print(f"drain command: exit {result['drain_command']['returncode']} after "
          f"{result['drain_command']['seconds']} s; {moves['shard_moves']} shard moves, p50 "
          f"{moves['move']['p50_s']} s, max {moves['move']['max_s']} s; "
          f"{len(result['moves_finished_after_drain_returned'])} finished after it returned, "
          f"all within {result['moves_settled_after_drain_returned_s']} s", file=sys.stderr,
          flush=True)
    return result


def _failed(result: JsonObject) -> bool:
    sizes = result.get("moves", [])
    drain = result.get("drain")
    return (any(r["failed"] or r["moves"]["unfinished"] for r in sizes)
            or (drain is not None and (drain["errors_total"] > 0
                                       or drain["drain_command"]["returncode"] != 0)))


def run_cli(args: argparse.Namespace) -> int:
    """Run with parsed options (also the `raftflow bench moves` entry point)."""
    if args.shards < 1:
        print("error: --shards must be >= 1", file=sys.stderr)
        return 2
    result: JsonObject = {}
    with sigterm_raises_interrupt():
        try:
            if args.only in (None, "moves"):
                result["moves"] = [_size_run(size, args) for size in args.sizes]
            if args.only in (None, "drain"):
                result["drain"] = _drain_run(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
    if args.json:
        print(json.dumps(result), flush=True)
    return 1 if _failed(result) else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
