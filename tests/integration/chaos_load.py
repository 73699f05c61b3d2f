"""The chaos workload as a load for integration tests (not a test module).

`run_under_load` starts an SDK client and worker of the chaos workflow on the given nodes, runs
`sessions` workload sessions (workflows with activities, timers and signals), calls the
blocking `operate()` in a thread meanwhile, then stops starting workflows, drives every started
one to its end and reads the cluster's side of the evidence. It answers the checker's
observations and the client calls that failed after the SDK's own retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from raftflow.chaos import collect
from raftflow.chaos.observations import Observations
from raftflow.chaos.runner import read_execution_log
from raftflow.chaos.workload import Workload
from raftflow.chaos.workload_defs import (
    TASK_QUEUE,
    ChaosInbox,
    ChaosWorkflow,
    ExecutionLog,
    chaos_step,
    install_log,
)
from raftflow.sdk import Client, Worker


async def run_under_load(addresses: Sequence[str], log_dir: Path, *, seed: int, sessions: int,
                         deadline_s: float, operate: Callable[[], None],
                         ) -> tuple[Observations, list[str]]:
    t0 = time.monotonic()
    execution_log = ExecutionLog(log_dir / "activities.jsonl", t0)
    install_log(execution_log)
    client = await Client.connect(list(addresses))
    worker = Worker(client, task_queue=TASK_QUEUE, workflows=[ChaosWorkflow, ChaosInbox],
                    activities=[chaos_step])
    running = asyncio.ensure_future(worker.run())
    workload = Workload(client, seed=seed, t0_monotonic=t0)
    drivers = [asyncio.ensure_future(workload.session(deadline_s)) for _ in range(sessions)]
    try:
        await asyncio.to_thread(operate)
        workload.accepting = False
        await asyncio.gather(*drivers)
        runs, listed = await collect.read_runs(client, workload.record.starts,
                                               workload.record.inboxes)
    finally:
        workload.accepting = False
        await worker.shutdown()
        running.cancel()
        await client.close()
        install_log(None)
        execution_log.close()
    record = workload.record
    observations = Observations(
        starts=tuple(record.starts), signals=tuple(record.signals),
        executions=read_execution_log(execution_log.path),
        client_results=tuple(record.results), runs=tuple(runs), digests=(), leader_samples=(),
        listed_workflow_ids=tuple(listed))
    return observations, record.last_errors
