"""One chaos run, end to end: cluster up, load, faults, heal, settle, collect, check, report.

Phases (seconds since the run began):
1. warm-up (WARMUP_S): the workload starts; no faults yet;
2. fault phase (`duration_s`): the nemesis injects the seed's schedule while sessions keep
   starting workflows;
3. settle: every fault is healed, no new workflow starts, and the sessions drive what they
   started to its end (signals, results), for at most `settle_s`;
4. collect and check: runs, histories and digests are read from the quiet cluster, the
   activity log from disk, and the checker compares them with what clients were told.
The cluster, the proxy and the worker are torn down whatever happens; the temporary
directory (node logs, activity log) is kept with `keep_data` or when a violation was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from raftflow.chaos import checker, collect, membership_ops
from raftflow.chaos.cluster import ChaosCluster
from raftflow.chaos.faults import PlannedFault, plan_faults, spare_slots_needed
from raftflow.chaos.following_worker import FollowingWorker
from raftflow.chaos.nemesis import Nemesis
from raftflow.chaos.observations import ActivityExecution, Observations
from raftflow.chaos.outcome import ChaosOutcome, InvariantRow
from raftflow.chaos.sampler import Sampler
from raftflow.chaos.timeline import buckets
from raftflow.chaos.workload import Workload
from raftflow.chaos.workload_defs import (
    TASK_QUEUE,
    ChaosInbox,
    ChaosWorkflow,
    ExecutionLog,
    chaos_step,
    install_log,
)
from raftflow.sdk import Worker

log = logging.getLogger(__name__)

WARMUP_S = 3.0
WORKER_SLOTS = 64
LEADERS_WAIT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosOptions:
    nodes: int
    duration_s: float
    fault_kinds: tuple[str, ...]
    seed: int
    report_dir: Path
    shards: int = 8
    concurrency: int = 8
    settle_s: float = 120.0
    keep_data: bool = False
    work_dir: Path | None = None  # parent of the temporary directory
    secure: bool = False  # HTTPS, peer TLS and auth on every node; the harness uses a token


def reproduce_command(options: ChaosOptions) -> str:
    return shlex.join([
        "raftflow", "chaos", "run", "--nodes", str(options.nodes),
        "--duration", f"{options.duration_s:g}", "--faults", ",".join(options.fault_kinds),
        "--seed", str(options.seed), "--shards", str(options.shards),
        "--concurrency", str(options.concurrency), "--report", str(options.report_dir),
        *(["--secure"] if options.secure else [])])


def read_execution_log(path: Path) -> tuple[ActivityExecution, ...]:
    """The activity log; a torn last line (a crash mid-write) is skipped: its activity never
    returned, so no workflow can hold its token."""
    executions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        executions.append(ActivityExecution(
            workflow_id=raw["workflow_id"], activity_index=int(raw["activity_index"]),
            attempt=int(raw["attempt"]), token=raw["token"], at_s=float(raw["at_s"])))
    return tuple(executions)


async def run_chaos(options: ChaosOptions) -> ChaosOutcome:
    plan = plan_faults(seed=options.seed, duration_s=options.duration_s,
                       kinds=options.fault_kinds, node_count=options.nodes)
    root = Path(tempfile.mkdtemp(prefix="raftflow-chaos-", dir=options.work_dir))
    keep = options.keep_data
    cluster = ChaosCluster(root, nodes=options.nodes, shards=options.shards, seed=options.seed,
                           spares=spare_slots_needed(plan, node_count=options.nodes),
                           secure=options.secure)
    try:
        await asyncio.to_thread(cluster.start)
        outcome = await _run_on(cluster, root, options, plan)
        keep = keep or bool(outcome.violations)
        return outcome
    except BaseException:
        keep = True
        raise
    finally:
        await asyncio.to_thread(cluster.stop)
        if keep:
            print(f"chaos: node logs and the activity log are kept in {root}",
                  file=sys.stderr, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


async def _run_on(cluster: ChaosCluster, root: Path, options: ChaosOptions,
                  plan: tuple[PlannedFault, ...]) -> ChaosOutcome:
    t0 = time.monotonic()
    sampler = Sampler(cluster.member_addresses(), options.shards, t0, cluster.credentials)
    execution_log = ExecutionLog(root / "activities.jsonl", t0)
    install_log(execution_log)
    background: list[asyncio.Task[None]] = [asyncio.ensure_future(sampler.run())]
    client = await cluster.credentials.client(cluster.addresses())
    worker = FollowingWorker(lambda: Worker(
        client, task_queue=TASK_QUEUE, workflows=[ChaosWorkflow, ChaosInbox], activities=[chaos_step],
        max_concurrent_activities=WORKER_SLOTS, max_concurrent_workflow_tasks=WORKER_SLOTS))
    worker.start()
    workload = Workload(client, seed=options.seed, t0_monotonic=t0)
    background.append(asyncio.ensure_future(workload.count_errors()))
    fault_end_s = WARMUP_S + options.duration_s

    followed = [dict(cluster.member_addresses())]  # the members last followed

    def follow(members: dict[str, str]) -> None:
        """Membership changed: sample, and send client calls to, the current members."""
        if members == followed[-1]:
            return
        followed.append(dict(members))
        sampler.follow(members)
        # The transport reads its address list on every call (cluster.address() gives the
        # normalized form it keeps), so the workload and the worker move with the members. A
        # call in flight holds an index into the list across awaits, so the list never gets
        # shorter: the members are repeated to the old length.
        transport = client.connection.transport
        length = max(len(transport.addresses), len(members))
        transport.addresses = tuple(itertools.islice(itertools.cycle(members.values()), length))
        worker.start()  # a new worker polls the current members (see following_worker.py)

    nemesis = Nemesis(cluster, sampler, plan, t0_monotonic=t0, phase_start_s=WARMUP_S,
                      phase_end_s=fault_end_s, on_members=follow)
    settle_end_s = fault_end_s + options.settle_s
    try:
        sessions = [asyncio.ensure_future(workload.session(settle_end_s))
                    for _ in range(options.concurrency)]
        try:
            await nemesis.run()
            await asyncio.sleep(max(0.0, fault_end_s - workload.now_s()))
        finally:
            workload.accepting = False
            await asyncio.to_thread(nemesis.heal_everything)
        log.info("fault phase over at %.1f s; settling", workload.now_s())
        await asyncio.gather(*sessions)
        settled_s = workload.now_s()
        windows = await nemesis.finish()
        await _until_every_shard_led(sampler)
        placement = await asyncio.to_thread(membership_ops.final_placement, cluster)
        runs, listed = await collect.read_runs(client, workload.record.starts,
                                               workload.record.inboxes)
        digests = await collect.read_digests(cluster.member_addresses(), cluster.credentials)
    finally:
        await worker.shutdown()
        for task in background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*background, return_exceptions=True)
        await client.close()
        install_log(None)
        execution_log.close()
    record = workload.record
    observations = Observations(
        starts=tuple(record.starts), signals=tuple(record.signals),
        executions=read_execution_log(execution_log.path),
        client_results=tuple(record.results), runs=tuple(runs), digests=tuple(digests),
        leader_samples=sampler.leader_samples(), listed_workflow_ids=tuple(listed),
        placement=placement, membership_failures=tuple(nemesis.membership_failures))
    violations = checker.check(observations)
    counts = checker.invariant_counts(violations)
    recoveries = sorted(w.recovered_after_s for w in windows if w.recovered_after_s is not None)
    if record.last_errors:
        log.info("some client errors (retried): %s", "; ".join(record.last_errors[:5]))
    return ChaosOutcome(
        seed=options.seed, duration_s=options.duration_s, nodes=options.nodes,
        fault_kinds=options.fault_kinds, command=reproduce_command(options),
        faults=tuple(windows), buckets=buckets(record.timeline, end_s=settled_s),
        invariants=tuple(InvariantRow(name=name, description=text, violations=counts[name])
                         for name, text in checker.INVARIANTS),
        violations=violations, workflows_started=len(record.starts),
        workflows_completed=len(record.results),
        recovery_p50_s=_quantile(recoveries, 0.5), recovery_p99_s=_quantile(recoveries, 0.99))


async def _until_every_shard_led(sampler: Sampler) -> None:
    """Reads go to shard leaders: wait (bounded) until every shard has one again, so that a
    shard still electing after the last heal does not fail the collection."""
    since_s = sampler.now_s()
    deadline_s = since_s + LEADERS_WAIT_S
    while not sampler.all_led(excluded=set(), since_s=since_s) and sampler.now_s() < deadline_s:
        await asyncio.sleep(0.2)


def _quantile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[min(98, max(0, round(fraction * 100) - 1))], 3)
