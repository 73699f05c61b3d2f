"""The client load of `raftflow bench moves`: fill shards with closed workflows, or run steady.

Both use the workflow of `raftflow bench` (bench/workflows.py: K sequential activities, eager
start, an in-process SDK worker). The steady load keeps C workflows in flight until told to
stop and records, per workflow, when it was started, how long the start call took and how
long the whole workflow took, so that any time window can be summarised afterwards by the
workflows *started* inside it. A failed workflow is recorded with the error, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from raftflow.bench.load import percentile
from raftflow.bench.move_timing import latency_summary
from raftflow.bench.workflows import BenchWorkflow, bench_step
from raftflow.sdk import Client, Worker

WORKER_SLOTS_MIN = 100  # as in bench/workflows.py: idle long polls hold slots too
SAMPLES_MAX = 10_000_000  # far above a run on one machine; bounds memory if a bug loops
ERRORS_SHOWN_MAX = 5
SLOWEST_SHOWN = 3  # ids of a window's slowest workflows, to look them up in the node logs


@dataclass(frozen=True, slots=True)
class Sample:
    workflow_id: str
    started_s: float  # time.perf_counter() at the start call, the clock of Snapshot.taken_s
    start_ms: float  # the start call alone
    total_ms: float  # start to result


@dataclass
class Tally:
    samples: list[Sample] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)  # (started_s, repr)

    def window(self, start_s: float, end_s: float) -> dict[str, object]:
        """The workflows started in [start_s, end_s): latency, start-call p99, errors."""
        assert end_s > start_s
        inside = [s for s in self.samples if start_s <= s.started_s < end_s]
        errors = [e for t, e in self.errors if start_s <= t < end_s]
        summary = latency_summary([s.total_ms for s in inside], seconds=end_s - start_s,
                                  errors=len(errors))
        starts = sorted(s.start_ms for s in inside)
        summary["start_p99_ms"] = round(percentile(starts, 0.99), 1) if starts else None
        summary["error_examples"] = errors[:ERRORS_SHOWN_MAX]
        slowest = sorted(inside, key=lambda s: s.total_ms)[-SLOWEST_SHOWN:]
        summary["slowest"] = [{"workflow_id": s.workflow_id, "ms": round(s.total_ms, 1),
                               "started_at_s": round(s.started_s - start_s, 2)}
                              for s in reversed(slowest)]
        return summary


@contextlib.asynccontextmanager
async def running_worker(client: Client, task_queue: str, concurrency: int,
                         ) -> AsyncIterator[Worker]:
    # Slots well above the workflows in flight: a worker without a free slot cannot take the
    # eager tasks its answers offer (bench/workflows.py).
    slots = max(WORKER_SLOTS_MIN, concurrency * 2)
    worker = Worker(client, task_queue=task_queue, workflows=[BenchWorkflow],
                    activities=[bench_step], max_concurrent_activities=slots,
                    max_concurrent_workflow_tasks=slots)
    async with worker:
        yield worker


async def _one(client: Client, tally: Tally, *, workflow_id: str, task_queue: str,
               activities: int) -> None:
    began = time.perf_counter()
    try:
        handle = await client.start_workflow(BenchWorkflow.run, activities, id=workflow_id,
                                             task_queue=task_queue, request_eager_start=True)
        started = time.perf_counter()
        result = await handle.result()
        assert result == activities, result
    except Exception as error:  # counted and shown, the run goes on
        tally.errors.append((began, repr(error)))
        print(f"workflow {workflow_id} failed: {error!r}", file=sys.stderr, flush=True)
        return
    if len(tally.samples) < SAMPLES_MAX:
        tally.samples.append(Sample(workflow_id=workflow_id, started_s=began, start_ms=(started - began) * 1000,
                                    total_ms=(time.perf_counter() - began) * 1000))


async def fill(client: Client, *, workflows: int, concurrency: int, activities: int) -> Tally:
    """Run `workflows` workflows to completion, `concurrency` at a time."""
    task_queue = f"fill-{uuid.uuid4().hex[:8]}"
    tally = Tally()
    remaining = iter(range(workflows))

    async def one_client() -> None:
        for index in remaining:
            await _one(client, tally, workflow_id=f"{task_queue}-{index}",
                       task_queue=task_queue, activities=activities)

    async with running_worker(client, task_queue, concurrency):
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return tally


async def steady(client: Client, tally: Tally, stop: asyncio.Event, *, task_queue: str,
                 concurrency: int, activities: int) -> None:
    """Keep `concurrency` workflows in flight until `stop` is set (the worker runs outside)."""
    counter = iter(range(SAMPLES_MAX))

    async def one_client() -> None:
        while not stop.is_set():
            await _one(client, tally, workflow_id=f"{task_queue}-{next(counter)}",
                       task_queue=task_queue, activities=activities)

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
