"""`raftflow bench`: completed workflows per second, each K sequential activities.

Starts N workflows of a built-in type (K activities one after another) through the SDK client
with C in flight, runs them with an in-process SDK worker, and measures each from start to
result. Without `--address` it launches its own 3-node cluster (always torn down). Progress goes
to stderr once a second; with `--json` the last stdout line is `{"workflows", "completed",
"failed", "seconds", "workflows_per_sec", "p50_ms", "p99_ms"}`. Numbers belong in
docs/benchmarks.md, never in test assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

import uvloop

from raftflow.bench.load import percentile
from raftflow.bench.local_cluster import launched_cluster
from raftflow.sdk import Client, Worker, activity, workflow

STEP_TIMEOUT = timedelta(seconds=30)


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


async def _drive(addresses: Sequence[str], *, workflows: int, concurrency: int,
                 activities: int) -> dict[str, object]:
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    latencies_ms: list[float] = []
    failed = 0
    remaining = iter(range(workflows))
    async with await Client.connect(list(addresses)) as client:
        worker = Worker(client, task_queue=task_queue, workflows=[BenchWorkflow],
                        activities=[bench_step], max_concurrent_activities=concurrency * 2,
                        max_concurrent_workflow_tasks=concurrency * 2)
        async with worker:
            started = time.monotonic()

            async def one_client() -> None:
                nonlocal failed
                for index in remaining:
                    begin = time.monotonic()
                    try:
                        result = await client.execute_workflow(
                            BenchWorkflow.run, activities, id=f"{task_queue}-{index}",
                            task_queue=task_queue)
                        assert result == activities, result
                        latencies_ms.append((time.monotonic() - begin) * 1000)
                    except Exception as error:  # counted and shown, the run goes on
                        failed += 1
                        print(f"workflow {index} failed: {error!r}", file=sys.stderr, flush=True)

            async def progress() -> None:
                while True:
                    await asyncio.sleep(1)
                    elapsed = time.monotonic() - started
                    print(f"[{elapsed:6.1f} s] completed {len(latencies_ms):7d} "
                          f"({len(latencies_ms) / elapsed:7.1f}/s) failed {failed}",
                          file=sys.stderr, flush=True)

            reporter = asyncio.create_task(progress())
            try:
                await asyncio.gather(*(one_client() for _ in range(concurrency)))
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            seconds = time.monotonic() - started
    latencies_ms.sort()
    return {"workflows": workflows, "completed": len(latencies_ms), "failed": failed,
            "seconds": round(seconds, 2),
            "workflows_per_sec": round(len(latencies_ms) / seconds, 1) if seconds else 0.0,
            "p50_ms": round(percentile(latencies_ms, 0.50), 1) if latencies_ms else None,
            "p99_ms": round(percentile(latencies_ms, 0.99), 1) if latencies_ms else None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", action="append", default=None, metavar="URL",
                        help="node URL (repeatable); default: launch a local 3-node cluster")
    parser.add_argument("--workflows", type=int, default=2000, help="workflows to run")
    parser.add_argument("--concurrency", type=int, default=64, help="workflows in flight")
    parser.add_argument("--activities", type=int, default=3, help="sequential activities each")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")


def run_cli(args: argparse.Namespace) -> int:
    if args.workflows < 1 or args.concurrency < 1 or args.activities < 0:
        print("error: --workflows and --concurrency must be >= 1, --activities >= 0",
              file=sys.stderr)
        return 2

    def measure(addresses: Sequence[str]) -> dict[str, object]:
        return uvloop.run(_drive(addresses, workflows=args.workflows,
                                 concurrency=args.concurrency, activities=args.activities))

    if args.address:
        summary = measure(args.address)
    else:
        with launched_cluster(nodes=3, shards=16, parent_dir=None, keep_data=False) as addresses:
            summary = measure(addresses)
    print(f"completed {summary['completed']} of {summary['workflows']} workflows "
          f"({args.activities} activities each) in {summary['seconds']} s: "
          f"{summary['workflows_per_sec']}/s, p50 {summary['p50_ms']} ms, "
          f"p99 {summary['p99_ms']} ms, failed {summary['failed']}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0 if summary["failed"] == 0 else 1
