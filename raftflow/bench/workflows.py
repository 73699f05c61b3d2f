"""`raftflow bench`: completed workflows per second, each K sequential activities.

Starts N workflows of a built-in type (K activities one after another) through the SDK client
with C in flight, runs them with an in-process SDK worker, and measures each from start to
result. Without `--address` it launches its own 3-node cluster (always torn down). Before
measuring it waits until shard leadership has settled (workflow_cost.py). Progress goes to
stderr once a second; with `--json` the last stdout line is `{"workflows", "completed",
"failed", "seconds", "workflows_per_sec", "p50_ms", "p99_ms"}`. The cost per completed workflow
over the measured window (`commits_per_workflow`, `commands_per_workflow`,
`http_requests_per_workflow`, `stream_calls_per_workflow`, `stream_frames_per_workflow`,
`cpu_ms_per_workflow` {"client", "nodes"},
`machine_busy_fraction`, `leader_changes`; workflow_cost.py) goes to stderr, as a sentence and
as one `cost: {...}` JSON line. Numbers belong in docs/benchmarks.md, never in test assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import uvloop

from raftflow.bench.credentials import Credentials, add_credential_arguments
from raftflow.bench.load import percentile
from raftflow.bench.local_cluster import launched_cluster, sigterm_raises_interrupt
from raftflow.bench.observe import discover_nodes
from raftflow.bench.workflow_cost import (
    cost_summary,
    describe_cost,
    mark_window,
    replicas_per_shard,
    wait_for_settled_leaders,
)
from raftflow.cluster.local_pki import make_local_security
from raftflow.sdk import Client, Worker, activity, workflow
from raftflow.sdk.worker import TaskProtocol

STEP_TIMEOUT = timedelta(seconds=30)
WORKER_SLOTS_MIN = 100  # the SDK worker's default


@activity.defn(name="bench-step")
async def bench_step(value: int) -> int:
    return value + 1


@workflow.defn(name="bench-sequence")
class BenchWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        value = 0
        for _ in range(steps):
            value = await workflow.execute_activity(bench_step, value,
                                                    start_to_close_timeout=STEP_TIMEOUT)
        return value


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)  # completed workflows only
    failed: int = 0


async def _run_workflows(client: Client, tally: _Tally, *, task_queue: str, workflows: int,
                         concurrency: int, activities: int, eager_start: bool) -> None:
    """`concurrency` loops, each starting the next workflow once its last one answered."""
    remaining = iter(range(workflows))

    async def one_client() -> None:
        for index in remaining:
            begin = time.monotonic()
            try:
                result = await client.execute_workflow(
                    BenchWorkflow.run, activities, id=f"{task_queue}-{index}",
                    task_queue=task_queue, request_eager_start=eager_start)
                assert result == activities, result
                tally.latencies_ms.append((time.monotonic() - begin) * 1000)
            except Exception as error:  # counted and shown, the run goes on
                tally.failed += 1
                print(f"workflow {index} failed: {error!r}", file=sys.stderr, flush=True)

    await asyncio.gather(*(one_client() for _ in range(concurrency)))


async def _progress(tally: _Tally, started: float) -> None:
    while True:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - started
        print(f"[{elapsed:6.1f} s] completed {len(tally.latencies_ms):7d} "
              f"({len(tally.latencies_ms) / elapsed:7.1f}/s) failed {tally.failed}",
              file=sys.stderr, flush=True)


async def drive(addresses: Sequence[str], *, workflows: int, concurrency: int,
                activities: int, eager_start: bool, credentials: Credentials | None = None,
                worker_protocol: TaskProtocol = "stream",
                ) -> tuple[dict[str, object], dict[str, object]]:
    """One measured run on a running cluster: (summary, cost); also bench/retention.py's probe."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    tally = _Tally()
    # The observer session (status, metrics) is not the SDK's: its requests are not counted.
    credentials = credentials or Credentials()
    async with credentials.observer_session() as observer, \
            await credentials.client(addresses) as client:
        nodes = await discover_nodes(observer, list(addresses))
        await wait_for_settled_leaders(observer, list(addresses), sys.stderr)
        replicas = await replicas_per_shard(observer, list(addresses))
        # Slots well above the workflows in flight: idle long polls hold slots too, and a
        # worker without a free slot cannot take the eager tasks its answers offer.
        slots = max(WORKER_SLOTS_MIN, concurrency * 2)
        worker = Worker(client, task_queue=task_queue, workflows=[BenchWorkflow],
                        activities=[bench_step], max_concurrent_activities=slots,
                        max_concurrent_workflow_tasks=slots, task_protocol=worker_protocol)
        async with worker:
            before = await mark_window(observer, nodes, client.transport)
            started = time.monotonic()
            reporter = asyncio.create_task(_progress(tally, started))
            try:
                await _run_workflows(client, tally, task_queue=task_queue, workflows=workflows,
                                     concurrency=concurrency, activities=activities,
                                     eager_start=eager_start)
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            seconds = time.monotonic() - started
            after = await mark_window(observer, nodes, client.transport)
    latencies_ms = sorted(tally.latencies_ms)
    summary: dict[str, object] = {
        "workflows": workflows, "completed": len(latencies_ms), "failed": tally.failed,
        "seconds": round(seconds, 2),
        "workflows_per_sec": round(len(latencies_ms) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(latencies_ms, 0.50), 1) if latencies_ms else None,
        "p99_ms": round(percentile(latencies_ms, 0.99), 1) if latencies_ms else None}
    return summary, cost_summary(nodes, before, after, len(latencies_ms), replicas)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", action="append", default=None, metavar="URL",
                        help="node URL (repeatable); default: launch a local 3-node cluster")
    parser.add_argument("--workflows", type=int, default=2000, help="workflows to run")
    parser.add_argument("--concurrency", type=int, default=64, help="workflows in flight")
    parser.add_argument("--activities", type=int, default=3, help="sequential activities each")
    parser.add_argument("--shards", type=int, default=16,
                        help="shards of the launched cluster (ignored with --address)")
    parser.add_argument("--no-eager-start", dest="eager_start", action="store_false",
                        help="start workflows without handing the first task to the in-process "
                             "worker in the same commit (Temporal's eager start; on by default)")
    parser.add_argument("--worker-protocol", choices=("stream", "http"), default="stream",
                        help="how the in-process worker takes tasks and answers them: task "
                             "streams (the SDK's default) or HTTP long polls and calls")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    add_credential_arguments(parser)


def run_cli(args: argparse.Namespace) -> int:
    if args.workflows < 1 or args.concurrency < 1 or args.activities < 0 or args.shards < 1:
        print("error: --workflows, --concurrency and --shards must be >= 1, --activities >= 0",
              file=sys.stderr)
        return 2

    def measure(addresses: Sequence[str], credentials: Credentials,
                ) -> tuple[dict[str, object], dict[str, object]]:
        # TLS connects go on asyncio's own loop (node/serve.py run_loop says why).
        run = asyncio.run if credentials.ssl_context is not None else uvloop.run
        return run(drive(addresses, workflows=args.workflows,
                                concurrency=args.concurrency, activities=args.activities,
                                eager_start=args.eager_start, credentials=credentials,
                                worker_protocol=args.worker_protocol))

    with sigterm_raises_interrupt():
        try:
            if args.address:
                summary, cost = measure(args.address, Credentials.of_args(args))
            else:
                with tempfile.TemporaryDirectory(prefix="raftflow-bench-pki-") as pki:
                    security = make_local_security(Path(pki)) if args.secure else None
                    with launched_cluster(nodes=3, shards=args.shards, parent_dir=None,
                                          keep_data=False, security=security) as addresses:
                        summary, cost = measure(addresses, Credentials.of_local(security))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
    print(f"completed {summary['completed']} of {summary['workflows']} workflows "
          f"({args.activities} activities each) in {summary['seconds']} s: "
          f"{summary['workflows_per_sec']}/s, p50 {summary['p50_ms']} ms, "
          f"p99 {summary['p99_ms']} ms, failed {summary['failed']}", file=sys.stderr, flush=True)
    print(describe_cost(cost), file=sys.stderr, flush=True)
    print(f"cost: {json.dumps(cost)}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0 if summary["failed"] == 0 else 1
