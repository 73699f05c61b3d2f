"""Measure the memory a store-backed shard replica holds for its open runs.

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, about a minute:

    .venv/bin/python tools/open_run_memory.py [OPEN_RUNS ...]

For each count (default 10,000 and 50,000) it starts that many workflows on a real
`ShardStore`'s state, signals each once (64 per commit, a busy shard's commit interval) and
commits; then reopens the file, as a restart does, and signals each once more. It prints the
Python memory the store's state holds (tracemalloc, after a garbage collection) at the end of
each phase: with the cache bounded (`OPEN_RUNS_CACHED`) and with it unbounded, which is what
every release before the cache held (all open runs decoded, from start-up on). Last it times the
two walks over every open run that a bounded cache makes read rows: the effects a new leader
rebuilds (`pending_effects`) and a visibility count.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
import tracemalloc

from raftflow.protocol.commands import SignalWorkflow, StartWorkflow
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


def _signal_each(store: ShardStore, open_runs: int, tag: str, index: int) -> int:
    state = store.state
    for n in range(open_runs):
        apply(state, SignalWorkflow(now_ms=2_000, namespace="default", workflow_id=f"wf{n}",
                                    signal_name="s", request_id=f"signal-{tag}-{n}"))
        if n % PER_COMMIT == PER_COMMIT - 1:
            index += 1
            store.commit(state, index, durable=False)
    index += 1
    store.commit(state, index, durable=False)
    return index


def _held_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 1e6


def _walks_ms(store: ShardStore) -> tuple[float, float]:
    began = time.perf_counter()
    pending_effects(store.state)
    effects_s = time.perf_counter() - began
    began = time.perf_counter()
    count(store.state, "default", parse("ExecutionStatus = 'Running'", {}))
    return effects_s * 1e3, (time.perf_counter() - began) * 1e3


def measure(open_runs: int, cached: int) -> tuple[float, float, tuple[float, float]]:
    """MB traced after the first pass of signals, after reopening and a second pass, and the
    walks' milliseconds then (untraced)."""
    limits.OPEN_RUNS_CACHED = cached
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.db")
        tracemalloc.start()
        store = ShardStore(path, 0, fresh=True)
        try:
            for n in range(open_runs):
                apply(store.state, _start(n))
            index = _signal_each(store, open_runs, "a", 1)
            first = _held_mb()
            store.close()
            store = ShardStore(path, 0, fresh=False)
            _signal_each(store, open_runs, "b", index)
            held = _held_mb()
            tracemalloc.stop()
            return first, held, _walks_ms(store)
        finally:
            store.close()
            tracemalloc.stop()


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [10_000, 50_000]
    bounded = limits.OPEN_RUNS_CACHED
    for runs in counts:
        for label, cached in ((f"cache {bounded}", bounded), ("unbounded", UNBOUNDED)):
            first, reopened, (effects_ms, count_ms) = measure(runs, cached)
            print(f"{runs:>7} open runs, {label:>10}: {first:7.1f} MB held after a pass, "
                  f"{reopened:7.1f} MB after reopening and another; walks: pending_effects "
                  f"{effects_ms:6.0f} ms, count of Running {count_ms:6.0f} ms", flush=True)


if __name__ == "__main__":
    main()
