"""`raftflow bench retention`: what retained closed workflows cost a node.

On one fresh 3-node cluster (16 shards, temp dir, free loopback ports, always torn down) it
measures the empty cluster, then fills it with closed workflows of 0 activities (the workflow
of `raftflow bench --activities 0`, `--fill-concurrency` in flight, namespace `default`, which
retains closed runs 3 days) up to each of `--stages` retained counts, and measures again. A
measurement (bench/retention_node.py) is: after RSS_SETTLE_S, each node's RSS, RssAnon and peak
RSS and its data dir per part; then a restart of the whole cluster, timed to ready; RSS again
once settled; then a throughput probe, `raftflow bench --workflows N --concurrency 64
--activities 3` (bench/workflows.py `drive`). The probe's workflows close and stay retained,
so the next fill tops up to the next stage exactly; the retained count reported is what
completed (fills and probes), never what was asked.

The report (bench/retention_report.py) has one row per stage; human lines go to stderr, with
`--json` one JSON object `{"machine", "command", "options", "stages", "goals"}` to stdout.
Numbers belong in docs/benchmarks.md, never in test assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import uvloop

from raftflow.bench.local_cluster import launched_local_cluster, sigterm_raises_interrupt
from raftflow.bench.move_load import fill
from raftflow.bench.retention_node import (
    NodeMemory,
    data_bytes_by_part,
    read_memory,
    restart_cluster,
)
from raftflow.bench.retention_options import PROBE_ACTIVITIES, PROBE_CONCURRENCY, build_parser
from raftflow.bench.retention_report import (
    FillResult,
    JsonObject,
    NodeSample,
    ProbeResult,
    Stage,
    goals_json,
    stages_json,
    table,
)
from raftflow.bench.workflows import drive
from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import Client

NODES = 3
RSS_SETTLE_S = 2.0  # after a fill or a restart, before reading memory: in-flight work drains
RESTART_TIMEOUT_S = 120.0  # to ready; the goal is 5 s, so this only catches a hung restart
FILL_CHUNK_WORKFLOWS = 10_000  # a progress line after each chunk (a 200k fill takes minutes)
FILL_ACTIVITIES = 0  # the contract's fill: `raftflow bench --activities 0`


def _machine() -> JsonObject:
    memory_kb = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "memory_mb": memory_kb // 1024,
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}


def _command_line() -> str:
    """The command as typed: `python -m raftflow bench retention ...` or `raftflow bench ...`."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    head = (["python", "-m", spec.name.removesuffix(".__main__")] if spec is not None
            else [os.path.basename(sys.argv[0])])
    return shlex.join([*head, *sys.argv[1:]])


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(node_id) for node_id in cluster.node_ids]


async def _fill(addresses: list[str], *, workflows: int, concurrency: int) -> FillResult:
    began = time.perf_counter()
    completed = failed = 0
    async with await Client.connect(addresses) as client:
        while completed + failed < workflows:
            chunk = min(FILL_CHUNK_WORKFLOWS, workflows - completed - failed)
            tally = await fill(client, workflows=chunk, concurrency=concurrency,
                               activities=FILL_ACTIVITIES)
            completed += len(tally.samples)
            failed += len(tally.errors)
            seconds = time.perf_counter() - began
            print(f"  filled {completed + failed}/{workflows} ({failed} failed) in "
                  f"{seconds:.0f} s: {completed / seconds:.0f}/s", file=sys.stderr, flush=True)
    assert completed + failed == workflows
    return FillResult(requested=workflows, completed=completed, failed=failed,
                      seconds=time.perf_counter() - began)


def _memory(cluster: LocalCluster) -> dict[str, NodeMemory]:
    time.sleep(RSS_SETTLE_S)
    return {node_id: read_memory(cluster.processes[node_id].pid)
            for node_id in cluster.node_ids}


def _measure_stage(cluster: LocalCluster, *, target: int, retained: int,
                   args: argparse.Namespace) -> Stage:
    """Fill up to `target` (from `retained`), then measure; see the module docstring."""
    addresses = _addresses(cluster)
    to_fill = max(0, target - retained)
    print(f"--- stage {target}: {retained} retained, filling {to_fill} ...", file=sys.stderr,
          flush=True)
    filled = (uvloop.run(_fill(addresses, workflows=to_fill, concurrency=args.fill_concurrency))
              if to_fill else FillResult(requested=0, completed=0, failed=0, seconds=0.0))
    retained += filled.completed
    memory = _memory(cluster)
    data = {node_id: data_bytes_by_part(cluster.data_dir / node_id)
            for node_id in cluster.node_ids}
    restart = restart_cluster(cluster, timeout_s=RESTART_TIMEOUT_S)
    print(f"  restart: stop {restart.stop_s:.2f} s (exit codes {restart.exit_codes}), ready "
          f"in {restart.ready_s:.2f} s, /healthz {restart.to_json()['healthz_s']}",
          file=sys.stderr, flush=True)
    memory_restarted = _memory(cluster)
    summary, cost = uvloop.run(drive(addresses, workflows=args.probe_workflows,
                                     concurrency=PROBE_CONCURRENCY,
                                     activities=PROBE_ACTIVITIES, eager_start=True))
    probe = ProbeResult(summary=summary, cost=cost)
    print(f"  probe: {probe.completed}/{args.probe_workflows} in {summary['seconds']} s, "
          f"{probe.workflows_per_sec}/s, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} "
          f"ms", file=sys.stderr, flush=True)
    nodes = tuple(NodeSample(node_id=node_id, memory=memory[node_id],
                             memory_restarted=memory_restarted[node_id],
                             data_parts_bytes=data[node_id]) for node_id in cluster.node_ids)
    return Stage(target=target, retained=retained, fill=filled, nodes=nodes, restart=restart,
                 probe=probe)


def _run_stages(args: argparse.Namespace) -> list[Stage]:
    stages: list[Stage] = []
    with launched_local_cluster(nodes=NODES, shards=args.shards, parent_dir=args.data_dir,
                                keep_data=args.keep_data) as (cluster, _):
        retained = 0
        for target in (0, *args.stages):
            stage = _measure_stage(cluster, target=target, retained=retained, args=args)
            stages.append(stage)
            retained = stage.retained_after_probe
    return stages


def _failed(stages: list[Stage]) -> bool:
    return any(s.fill.failed or s.probe.failed or not s.restart.graceful for s in stages)


def run_cli(args: argparse.Namespace) -> int:
    """Run with parsed options (also the `raftflow bench retention` entry point)."""
    machine, command = _machine(), _command_line()
    print(f"machine: {machine}\ncommand: {command}", file=sys.stderr, flush=True)
    with sigterm_raises_interrupt():
        try:
            stages = _run_stages(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
    rows = stages_json(stages)
    goals = goals_json(rows)
    print(table(rows), file=sys.stderr)
    print(f"goals: {json.dumps(goals)}", file=sys.stderr, flush=True)
    if args.json:
        options = {"stages": list(args.stages), "shards": args.shards,
                   "fill_concurrency": args.fill_concurrency,
                   "probe_workflows": args.probe_workflows,
                   "probe_concurrency": PROBE_CONCURRENCY, "probe_activities": PROBE_ACTIVITIES}
        print(json.dumps({"machine": machine, "command": command, "options": options,
                          "stages": rows, "goals": goals}), flush=True)
    return 1 if _failed(stages) else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
