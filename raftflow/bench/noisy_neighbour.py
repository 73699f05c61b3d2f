"""`raftflow bench noisy-neighbour`: does one namespace's flood of starts hurt another's
workflows, with the flooder's rate limited and without?

After the leaders settle and an unmeasured warm-up, four phases of `--duration` seconds each,
on one cluster (launched here unless `--address`):
1. alone: the quiet namespace runs its workflows, nothing else;
2. flood, limited: the same, while the noisy namespace floods starts, limited to
   `--noisy-start-rate` per second over the cluster (api/rate_limits.py);
3. flood ignoring Retry-After, limited: the same limit, but the flood's clients send their
   next start at once after a 429 (a misbehaving client: refusals cost the nodes work too);
4. flood, unlimited: the polite flood with noisy's limit lifted (the cluster's default:
   unlimited), to show what the limit buys.

The quiet workload: `--quiet-concurrency` workflows in flight in namespace `quiet`, each
`--activities` sequential activities, run by an SDK client and worker in this process; each is
measured from start to result. The flood: a `raftflow bench starts` process in namespace
`noisy`, `--flood-concurrency` clients starting workflows back to back and retrying a 429 after
its Retry-After (as the SDK does); no worker runs noisy's workflows, so its load is the starts
alone. It runs in its own process so that its client work does not slow the quiet client's
event loop; both share this machine's cores with the nodes, which is part of the result.

With `--json` the last stdout line is `{"phases": [{"phase", "quiet": {"completed",
"workflows_per_sec", "p50_ms", "p99_ms", "failed"}, "noisy": {"starts_per_sec", "errors",
"retries", "flood_client_cores", "node_cores"} | null}], "noisy_start_rate": ...}`. Numbers go to docs/benchmarks.md, never into assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import uvloop

from raftflow.bench.load import percentile
from raftflow.bench.local_cluster import launched_cluster, sigterm_raises_interrupt
from raftflow.bench.workflow_cost import wait_for_settled_leaders
from raftflow.bench.workflows import BenchWorkflow, bench_step
from raftflow.sdk import Client, Worker

QUIET, NOISY = "quiet", "noisy"
WORKER_SLOTS = 100
# The flood process gets this long beyond its phase to print its summary and exit.
FLOOD_EXIT_S = 60.0
WARMUP_S = 5.0  # of the quiet workload, unmeasured, before the first phase


@dataclass(frozen=True)
class Phase:
    name: str
    # The flood's limit: None: no flood; "limit": --noisy-start-rate; "none": unlimited.
    flood: Literal["limit", "none"] | None
    ignore_retry_after: bool = False


PHASES = (Phase("alone", None), Phase("flood, limited", "limit"),
          Phase("flood ignoring Retry-After, limited", "limit", ignore_retry_after=True),
          Phase("flood, unlimited", "none"))


@dataclass
class _Quiet:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0


async def _quiet_phase(client: Client, *, task_queue: str, concurrency: int, activities: int,
                       duration_s: float, tag: str) -> dict[str, object]:
    """Closed loop for `duration_s`: each of `concurrency` loops starts its next workflow once
    its last one returned."""
    tally = _Quiet()
    deadline = time.monotonic() + duration_s
    began = time.monotonic()

    async def loop(index: int) -> None:
        sequence = 0
        while time.monotonic() < deadline:
            sequence += 1
            started = time.monotonic()
            try:
                result = await client.execute_workflow(
                    BenchWorkflow.run, activities, id=f"{tag}-{index}-{sequence}",
                    task_queue=task_queue)
                assert result == activities, result
                tally.latencies_ms.append((time.monotonic() - started) * 1000)
            except Exception as error:  # counted and shown; the phase goes on
                tally.failed += 1
                print(f"quiet workflow failed: {error!r}", file=sys.stderr, flush=True)

    await asyncio.gather(*(loop(index) for index in range(concurrency)))
    seconds = time.monotonic() - began
    latencies = sorted(tally.latencies_ms)
    return {"completed": len(latencies), "failed": tally.failed,
            "workflows_per_sec": round(len(latencies) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None}


def _start_flood(addresses: Sequence[str], *, concurrency: int, duration_s: float,
                 ignore_retry_after: bool) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "raftflow", "bench", "starts", "--namespace", NOISY,
               "--concurrency", str(concurrency), "--duration", str(duration_s),
               "--warmup", "0", "--json"]
    if ignore_retry_after:
        command.append("--ignore-retry-after")
    for address in addresses:
        command += ["--address", address]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def _flood_result(flood: subprocess.Popen[str], timeout_s: float) -> dict[str, object]:
    try:
        out, _ = flood.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        flood.kill()
        flood.communicate()
        raise RuntimeError("the flood process did not finish") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if flood.returncode not in (0, 1) or not lines:
        raise RuntimeError(f"the flood process failed (exit {flood.returncode})")
    summary = json.loads(lines[-1])
    seconds = summary["seconds"] or 1.0
    node_cpu_s = [n["cpu_s"] for n in summary["nodes"] if n["cpu_s"] is not None]
    # Cores busy over the phase: the flood client's own, and the nodes' (all namespaces).
    return {"starts_per_sec": summary["starts_per_sec"], "errors": summary["errors"],
            "retries": summary["retries"],
            "flood_client_cores": round((summary["client_cpu_s"] or 0.0) / seconds, 2),
            "node_cores": round(sum(node_cpu_s) / seconds, 2) if node_cpu_s else None}


async def _set_noisy_rate(session: aiohttp.ClientSession, address: str,
                          rate_per_s: float | None) -> None:
    async with session.patch(f"{address}/api/v1/namespaces/{NOISY}",
                             json={"start_rate_per_s": rate_per_s}) as answer:
        if answer.status != 200:
            raise RuntimeError(f"setting noisy's rate: HTTP {answer.status} "
                               f"{await answer.text()}")
    # Each node follows the map within a heartbeat; give the change a moment to arrive.
    await asyncio.sleep(1.0)


async def _create_namespaces(session: aiohttp.ClientSession, address: str) -> None:
    for name in (QUIET, NOISY):
        async with session.post(f"{address}/api/v1/namespaces", json={"name": name}) as answer:
            if answer.status not in (200, 201):
                raise RuntimeError(f"creating {name}: HTTP {answer.status} "
                                   f"{await answer.text()}")


async def measure(addresses: Sequence[str],
                  args: argparse.Namespace) -> list[dict[str, object]]:
    """One entry per phase: its name, the quiet workload's numbers, the flood's (or None)."""
    phases: list[dict[str, object]] = []
    task_queue = f"quiet-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as session:
        await wait_for_settled_leaders(session, list(addresses), sys.stderr)
        await _create_namespaces(session, addresses[0])
        client = await Client.connect(list(addresses), namespace=QUIET)
        worker = Worker(client, task_queue=task_queue, workflows=[BenchWorkflow],
                        activities=[bench_step], max_concurrent_activities=WORKER_SLOTS,
                        max_concurrent_workflow_tasks=WORKER_SLOTS)
        try:
            async with worker:
                await _quiet_phase(client, task_queue=task_queue,
                                   concurrency=args.quiet_concurrency,
                                   activities=args.activities, duration_s=WARMUP_S,
                                   tag="warmup")
                for index, phase in enumerate(PHASES):
                    flood = None
                    if phase.flood is not None:
                        await _set_noisy_rate(session, addresses[0], args.noisy_start_rate
                                              if phase.flood == "limit" else None)
                        flood = _start_flood(addresses, concurrency=args.flood_concurrency,
                                             duration_s=args.duration,
                                             ignore_retry_after=phase.ignore_retry_after)
                    print(f"phase {phase.name} ...", file=sys.stderr, flush=True)
                    quiet = await _quiet_phase(
                        client, task_queue=task_queue, concurrency=args.quiet_concurrency,
                        activities=args.activities, duration_s=args.duration,
                        tag=f"phase{index}")
                    noisy = None
                    if flood is not None:
                        noisy = await asyncio.to_thread(_flood_result, flood,
                                                        args.duration + FLOOD_EXIT_S)
                    phases.append({"phase": phase.name, "quiet": quiet, "noisy": noisy})
                    print(f"  quiet {quiet}\n  noisy {noisy}", file=sys.stderr, flush=True)
        finally:
            await client.close()
    return phases


def run_cli(args: argparse.Namespace) -> int:
    with sigterm_raises_interrupt():
        try:
            if args.address:
                phases = uvloop.run(measure(args.address, args))
            else:
                with launched_cluster(nodes=3, shards=16, parent_dir=None,
                                      keep_data=False) as addresses:
                    phases = uvloop.run(measure(addresses, args))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
    for phase in phases:
        print(f"{phase['phase']}: quiet {phase['quiet']}; noisy {phase['noisy']}",
              file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"phases": phases, "noisy_start_rate": args.noisy_start_rate,
                          "quiet_concurrency": args.quiet_concurrency,
                          "activities": args.activities,
                          "flood_concurrency": args.flood_concurrency,
                          "phase_s": args.duration}), flush=True)
    return 0

