"""Measure the memory a store-backed shard replica holds for its open runs, and what its walks
over them cost.

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, a few minutes:

    .venv/bin/python tools/open_run_memory.py [OPEN_RUNS ...]

For each count (default 10,000 and 50,000) it starts that many workflows on a real
`ShardStore`'s state and has a worker take each one's first workflow task (the run then waits
with nothing to dispatch, as a workflow blocked on a timer or a signal does), committing every
64 runs (a busy shard's commit interval). Then it reopens the file, as a restart does, and
signals each run once. It prints the Python memory the state holds (tracemalloc, after a
garbage collection) after the first pass and after the second, with the cache bounded
(`OPEN_RUNS_CACHED`) and unbounded, which is what every release before the cache held (all
open runs decoded, from start-up on). It also times the walks over every open run that a
bounded cache makes read rows: a visibility count of the Running, and the effects a new leader
rebuilds (`pending_effects`) after one more reopening, twice (the first reads every row, the
second only those that may hold a task to dispatch: none here).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable

from raftflow.protocol.commands import (
    Command,
    RecordWorkflowTaskStarted,
    SignalWorkflow,
    StartWorkflow,
)
from raftflow.shards.core.apply import apply, pending_effects
from raftflow.shards.store import limits
from raftflow.shards.store.shard_store import ShardStore
from raftflow.shards.visibility_reads import count
from raftflow.visibility.query_parser import parse

PER_COMMIT = 64
UNBOUNDED = 10**9


def _start(n: int) -> StartWorkflow:
    return StartWorkflow(now_ms=1_000, namespace="default", workflow_id=f"wf{n}",
                         workflow_type="Greeter", task_queue="q", input=b'"in"',
                         request_id=f"start-{n}", run_id=f"run{n}")


def _take_task(n: int) -> RecordWorkflowTaskStarted:
    return RecordWorkflowTaskStarted(now_ms=1_500, namespace="default", workflow_id=f"wf{n}",
                                     run_id=f"run{n}", scheduled_event_id=2, identity="worker",
                                     request_id=f"take-{n}")


def _signal(n: int) -> SignalWorkflow:
    return SignalWorkflow(now_ms=2_000, namespace="default", workflow_id=f"wf{n}",
                          signal_name="s", request_id=f"signal-{n}")


def _each(store: ShardStore, open_runs: int, command: Callable[[int], Command],
          index: int) -> int:
    """Apply `command(n)` to every run, committing every PER_COMMIT; the last index."""
    state = store.state
    for n in range(open_runs):
        apply(state, command(n))
        if n % PER_COMMIT == PER_COMMIT - 1:
            index += 1
            store.commit(state, index, durable=False)
    index += 1
    store.commit(state, index, durable=False)
    return index


def _held_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 1e6


def _effects_ms(store: ShardStore) -> float:
    began = time.perf_counter()
    pending_effects(store.state)
    return (time.perf_counter() - began) * 1e3


def _count_ms(store: ShardStore) -> float:
    began = time.perf_counter()
    count(store.state, "default", parse("ExecutionStatus = 'Running'", {}))
    return (time.perf_counter() - began) * 1e3


def measure(open_runs: int, cached: int) -> tuple[float, float, float, float, float]:
    """MB traced after the first pass and after the reopening and second pass; milliseconds of
    a count, and of `pending_effects` after a second reopening, first and second call."""
    limits.OPEN_RUNS_CACHED = cached
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.db")
        tracemalloc.start()
        store = ShardStore(path, 0, fresh=True)
        try:
            for n in range(open_runs):
                apply(store.state, _start(n))
            index = _each(store, open_runs, _take_task, 1)
            first = _held_mb()
            store.close()
            store = ShardStore(path, 0, fresh=False)
            _each(store, open_runs, _signal, index)
            second = _held_mb()
            tracemalloc.stop()
            count_ms = _count_ms(store)
            store.close()
            store = ShardStore(path, 0, fresh=False)
            return first, second, count_ms, _effects_ms(store), _effects_ms(store)
        finally:
            store.close()
            tracemalloc.stop()


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [10_000, 50_000]
    bounded = limits.OPEN_RUNS_CACHED
    for runs in counts:
        for label, cached in ((f"cache {bounded}", bounded), ("unbounded", UNBOUNDED)):
            first, second, count_ms, effects_ms, again_ms = measure(runs, cached)
            print(f"{runs:>7} open runs, {label:>10}: held {first:6.1f} MB after the first pass, "
                  f"{second:6.1f} MB after the reopening and second; count of Running "
                  f"{count_ms:5.0f} ms; after reopening, pending_effects {effects_ms:5.0f} ms, "
                  f"then {again_ms:5.0f} ms", flush=True)


if __name__ == "__main__":
    main()
