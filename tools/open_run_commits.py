"""Measure what a shard store's commit costs with many open runs.

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, under a minute:

    .venv/bin/python tools/open_run_commits.py [OPEN_RUNS ...]

For each count (default 1,000, 10,000 and 50,000) it starts that many workflows on a real
`ShardStore`'s state and commits, then 20 times signals 64 of them (one commit interval's
changes on a busy shard) and commits, and prints the median commit time and the file's size.
Since store format 4 a commit rewrites only the rows of the runs the core touched; before it,
every commit encoded every open run (the numbers of both are in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from raftflow.protocol.commands import SignalWorkflow, StartWorkflow
from raftflow.shards.core.apply import apply
from raftflow.shards.store.shard_store import ShardStore

ROUNDS = 20
CHANGED_PER_ROUND = 64


def _start(n: int) -> StartWorkflow:
    return StartWorkflow(now_ms=1_000, namespace="default", workflow_id=f"wf{n}",
                         workflow_type="Greeter", task_queue="q", input=b'"in"',
                         request_id=f"start-{n}", run_id=f"run{n}")


def measure(open_runs: int) -> tuple[float, int]:
    """Median seconds of a commit after CHANGED_PER_ROUND signals, and the file's bytes."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.db")
        store = ShardStore(path, 0, fresh=True)
        try:
            state = store.state
            for n in range(open_runs):
                apply(state, _start(n))
            store.commit(state, 1, durable=False)
            seconds = []
            for round_ in range(ROUNDS):
                for j in range(CHANGED_PER_ROUND):
                    n = (round_ * CHANGED_PER_ROUND + j) % open_runs
                    apply(state, SignalWorkflow(now_ms=2_000, namespace="default",
                                                workflow_id=f"wf{n}", signal_name="s",
                                                request_id=f"signal-{round_}-{j}"))
                began = time.perf_counter()
                store.commit(state, 2 + round_, durable=False)
                seconds.append(time.perf_counter() - began)
            return statistics.median(seconds), os.path.getsize(path)
        finally:
            store.close()


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [1_000, 10_000, 50_000]
    for count in counts:
        median_s, size = measure(count)
        print(f"{count:>7} open runs: commit median {median_s * 1e3:.2f} ms, "
              f"file {size / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
